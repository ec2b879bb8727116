#!/usr/bin/env python3
"""Write ~30 deterministic Chinese / mixed sentence pairs as JSONL for
sentence-similarity (StructBERT) tests.

Usage:
  python tests/reference/make_chinese_pairs.py --out FILE.jsonl

Each line: {"text_a": ..., "text_b": ...}.  The set has paraphrases and
unrelated pairs in everyday Chinese (LCQMC / ATEC style questions), Chinese
mixed with Latin letters, digits and full-width punctuation, a traditional /
simplified pair, pairs long enough to be truncated at 128 tokens (one side
long, both long), an empty side and a whitespace-only side.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_SHORT = [
    ("今天天气很好", "今天天气不错"),
    ("这件衣服挺好看", "这件衣服好看"),
    ("英雄联盟什么英雄最好", "英雄联盟最好英雄是什么"),
    ("我的快递为什么还没有到？", "快递几天了还没送到，怎么回事"),
    ("怎么修改登录密码？", "如何重置账户密码"),
    ("花呗可以提前还款吗", "借呗怎么申请额度"),
    ("北京是中国的首都", "上海是中国最大的城市"),
    ("我想退款", "申请退款需要多长时间"),
    ("苹果手机很好用", "iPhone使用体验优秀"),
    ("我要退货", "今天天气不错"),
    ("这家餐厅的菜很好吃", "这个饭店的饭菜味道不错"),
    ("火车站怎么走？", "请问去火车站的路怎么走"),
    ("明天会下雨吗", "明天的天气怎么样"),
    ("他是我的老师", "她是我的学生"),
    ("银行卡被冻结了怎么办", "信用卡额度怎么提高"),
]

_MIXED = [
    ("iPhone 15 Pro的价格是多少？", "iPhone15Pro多少钱"),
    ("COVID-19疫情在2020年爆发", "新冠疫情是2020年开始的"),
    ("用Python写一个排序算法", "如何用Java实现快速排序"),
    ("订单号：A20240501-0099，请尽快发货！", "订单A20240501-0099什么时候发货？"),
    ("5G网络比4G快10倍", "５Ｇ网络的速度是４Ｇ的十倍"),
    ("我們今天去學校", "我们今天去学校"),
    ("BERT模型可以计算句子相似度", "StructBERT用于中文文本匹配"),
]

_LONG_A = ("北京是中国的首都，也是全国的政治中心和文化中心。这座城市有三千多年的建城史，"
           "故宫、天坛、长城和颐和园都是世界闻名的名胜古迹。每年都有大量游客来到北京旅游，"
           "他们参观博物馆，品尝北京烤鸭，在胡同里散步，感受这座城市的历史和现代生活。"
           "近年来，北京的交通越来越发达，地铁线路已经超过二十条，出行非常方便。")
_LONG_B = ("我在网上买了一台笔记本电脑，订单号是A20240501，付款已经三天了，但是快递一直"
           "没有更新物流信息。我联系了客服，客服说仓库缺货，需要等待一周左右才能发货。"
           "我觉得这样的服务很不好，如果下周还不能发货，我就要申请退款了。请问退款一般需要"
           "多长时间才能到账？是原路退回到我的银行卡吗？")
_LONG_C = ("上海是中国最大的经济中心城市，位于长江入海口，是重要的国际港口。上海的外滩和"
           "陆家嘴每天晚上都有漂亮的夜景，吸引了很多游客。这里的地铁网络也很发达，"
           "公交和出租车也非常方便，生活节奏很快，很多年轻人在这里工作和学习。")

_EDGE = [
    ("北京有什么好玩的地方？", _LONG_A),                     # short vs long
    (_LONG_B, "快递一直不发货怎么办"),                        # long vs short
    (_LONG_A, _LONG_C),                                      # both long
    (_LONG_B, _LONG_B),                                      # identical long
    (_LONG_A + _LONG_C, "北京和上海哪个城市更大"),            # very long first
    ("", "今天天气很好"),                                    # empty first
    ("今天天气很好", "   "),                                 # whitespace-only second
    ("  前后 有空格\t的句子  ", "前后有空格的句子"),
]


def make_pairs() -> list[dict]:
    return [{"text_a": a, "text_b": b} for a, b in _SHORT + _MIXED + _EDGE]


def main() -> int:
    parser = argparse.ArgumentParser(description="Chinese sentence pairs (JSONL)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pairs = make_pairs()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {len(pairs)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
