"""A small, realistic BERT WordPiece vocabulary built on the spot for tests.

The layout of the first ids follows bert-base-chinese (and the Chinese BERT
vocabularies derived from it, e.g. StructBERT's 21128-entry one):

    0 [PAD], 1-99 [unused1]..[unused99], 100 [UNK], 101 [CLS], 102 [SEP],
    103 [MASK], 104 <S>, 105 <T>

then single characters (ASCII punctuation, digits, letters, Latin-1 letters,
general and full-width punctuation, kana, Hangul, a couple of thousand common
CJK characters, a few emoji), whole words (English, accented European words in
both their accented and accent-stripped spellings, numbers), and ``##``
continuation pieces (English suffixes, every letter and digit, Hangul
syllables, common CJK characters; bert-base-chinese has ``##`` + CJK entries
even though BERT's tokenizer splits CJK characters into single-character words,
so they are never matched inside Chinese text).

Cased entries (capital letters, capitalised words, accented spellings) are
included on purpose: they only match when the tokenizer runs with
``do_lower_case=False``, so the cased and uncased variants tokenise
differently.  Some characters are deliberately missing (rare CJK such as 龘,
most emoji, full-width Latin letters and digits) and Cyrillic has letters but
no ``##`` pieces, so that [UNK] appears in ordinary text.

Everything is a fixed list: the vocabulary is the same on every call.
"""

from __future__ import annotations

from pathlib import Path

from models.common.multilingual_corpus import _WORDS

# bert-base-chinese's first 106 entries.
_SPECIALS = (["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)]
             + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "<S>", "<T>"])

_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_LATIN1 = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßœ" + "ÀÉÜÖÄÑÇ"
_SYMBOLS = "—–…‘’“”•·°±×÷€£¥§©®™←→↑↓■□▲●○★☆♪※"
_FULLWIDTH = "、。〃〈〉《》「」『』【】〔〕〖〗〜！＂＃％＆＇（）＊＋，－．／：；＜＝＞？＠［＼］＾＿｀｛｜｝～・"
_EMOJI = ["😀", "😂", "👍", "❤", "🎉"]
_GREEK_CYRILLIC = "αβγδεθλμπστφωιουκνρ" + "абвгдежзийклмнопрстуфхцчшщыьэюя"

# Frequent simplified Chinese characters (roughly by usage frequency), plus a
# few traditional ones.  Duplicates are removed when the vocabulary is built.
_COMMON_HANZI = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下"
    "自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"
    "其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又"
    "关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯"
    "月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入"
    "几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管"
    "期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像"
    "难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今"
    "切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令"
    "准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚"
    "请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早"
    "曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽"
    "推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴"
    "例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻"
    "父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普"
    "怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险"
    "待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策"
    "演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压"
    "银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛"
    "托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮"
    "露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋"
    "画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸"
    "予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒"
    "烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇"
    "肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸"
    "扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸"
    "毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊"
    "吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵硬麦蒋操耶阻订"
    "彩抽赞魔纷沿喊违妹浪汇币丰蓝殊献桌啦瓦莱援译夺汽烧距裁偏符勇触课敬哭懂墙袭召罚侠厅拜"
    "巧侧韩冒债曼融惯享戴童犹乘挂奖绍厚纵障讯涉彻刊丈爆乌役描洗玛患妙镜唱烦签仙彼弗症仿倾"
    "牌陷鸟轰咱菜闭奋庆撤泪茶疾缘播朗杜奶季丹狗尾仪偷奔珠虫驻孔宜艾桥淡翼恨繁寒伴叹旦愈潮"
    "粮缩罢聚径恰挑袋灰捕徐珍幕映裂泰隔启尖忠累炎暂估泛荒偿横拒瑞忆孤鼻闹羊呆厉衡胞零穷舍"
    "码赫婆魂灾洪腿胆津俗辩胸晓劲贫仁偶辑邦恢赖圈摸仰润堆碰艇稍迟辆废净凶署壁御奉旋冬矿抬"
    "蛋晨伏吹鸡倍糊秦盾杯租骑乏隆诊奴摄丧污渡旗甘耐凭扎抢绪粗肩梁幻菲皆碎宙叔岩荡综爬荷悉"
    "蒂返井壮薄悄扫敏碍殖详迪矛霍允幅撒剩凯颗骂赏液番箱贴漫酸郎腰舒眉忧浮辛恋餐吓挺励辞艘"
    "键伍峰尺昨黎辈贯侦滑券崇扰宪绕趋慈乔阅汗枝拖墨胁插箭腊粉泥氏彭拔骗凤慧媒佩愤扑龄驱惜"
    "豪掩兼跃尸肃帕驶堡届欣惠册储飘桑闲惨洁踪勃宾频仇磨递邪撞拟滚奏巡颜剂绩贡疯坡瞧截燃焦"
    "殿伪柳锁逼颇昏劝呈搜勤戒驾漂饮曹朵仔柔俩孟腐幼践籍牧凉牲佳娜浓芳稿竹腹跌逻垂遵脉貌柏"
    "狱猜怜惑陶兽帐饰贷昌叙躺钢沟寄扶铺邓寿惧询汤盗肥尝匆辉奈扣廷澳嘛董迁凝慰厌脏腾幽怨鞋"
    "丢埋泉涌辖躲晋紫艰魏吾慌祝邮吐狠鉴曰械咬邻赤挤弯椅陪割揭韦悟聪雾锋梯猫祥阔誉筹丛牵鸣"
    "沈阁穆屈旨袖猎臂蛇贺柱抛鼠瑟戈牢逊迈欺吨琴衰瓶恼燕仲诱狼池疼卢仗冠粒遥吕玄尘冯抚浅敦"
    "纠钻晶岂峡苍喷耗凌敲菌赔涂粹扁亏寂煤熊恭湿循暖糖赋抑秩帽哀宿踏烂袁侯抖夹昆肝擦猪炼恒"
    "慎搬纽纹玻渔磁铜齿跨押怖漠疲叛遣兹祭醉拳弥斜档稀捷肤疫肿豆削岗晃吞宏癌肚隶履涨耀扭坛"
    "拨沃绘伐堪仆郭牺歼墓雇廉契拼惩捉覆刷劫嫌瓜歇雕闷乳串娃缴唤赢莲霸桃妥瘦搭赴岳嘉舱俊址"
    "庞耕锐缝悔邀玲惟斥宅添挖呵讼氧浩羽斤酷掠妖祸侍乙妨贪挣汪尿莉悬唇翰仓轨枚盐览傅帅庙芬"
    "屏寺胖璃愚滴疏萧姿颤丑劣柯寸扔盯辱匹俱辨饿蜂哦腔郁溃谨糟葛苗肠忌溜鸿爵鹏鹰笼丘桂滋聊"
    "挡纲肌茨壳痕碗穴膀卓贤卧膜毅锦欠哩函茫昂薛皱夸豫胃舌剥傲拾窝睁携陵哼棉晴铃填饲渴吻扮"
    "逆脆喘罩卜炉柴愉绳胎蓄眠竭喂傻慕浑奸扇柜悦拦诞饱乾泡贼亭夕爹酬儒姻卵氛泄杆挨僧蜜吟猩"
    "遂狭肖甜霞驳裕顽於摘矮秒卿畜咽披辅勾盆疆赌塑畏吵囊嗯泊肺骤缠冈羞瞪吊贾漏斑涛悠鹿俘锡"
    "卑葬铭滩嫁催翅盒蛮矣潘歧赐鲍锅廊拆灌勉盲宰佐啥胀扯禧辽抹筒棋裤唉朴咐孕誓喉妄拘链驰栏"
    "逝窃艳臭纤棵趁匠盈翁愁瞬婴孝颈倘浙谅蔽畅赠妮莎尉冻跪闯葡厨鸭颠遮谊圳吁仑辟瘤嫂陀框谭"
    "亨钦庸歉芝吼甫衫摊宴嘱衷娇陕矩浦讶耸裸碧摧薪淋耻胶屠鹅饥盼脖虹翠崩账萍逢赚撑翔倡绵猴"
    "枯巫昭怔渊凑溪蠢禅阐旺寓藤匪伞碑挪琼脂谎慨菩萄狮掘抄岭晕逮砍挫碌"
    # everyday words used by the test sentences
    "衣服挺看钥匙忘咖啡厅牛奶面包苹果香蕉橘葡萄西瓜桃梨蛋糕饺粥馒头米饭餐厅超市银行医院"
    "邮局机场火车站地铁公交出租票护照签证酒店宾馆房间钥匙洗澡毛巾牙刷手机电脑键盘鼠标屏幕"
    "软件硬件网络密码账户登录注册订单快递包裹退款换货客服投诉评价优惠折扣价格便宜贵"
    "們這個來說時國會對發後經過還沒現學點問題爲為與從兩實體東長頭見開關門電話書車馬魚鳥"
)

_EN_WORDS = (
    "the of and to in is was for on that with as by at from it this be are an or not "
    "have has had but which one all were we you they he she his her their there what when "
    "who will would can could about more other some than then them these so only new time "
    "first also after two over into most may any such like just how where each make made "
    "many well good very our out up no do does did year years city world people data "
    "model models search engine query document text sentence similarity chinese language "
    "price best quick answer river market green house small train station music book "
    "coffee bread water computer network reading writing history science important "
    "hello world test ok yes cafe resume naive uber strasse garcon senor nino manana deja "
    "eleve chateau facade cooperate jalapeno pinata fiance noel creme brulee "
    "gpt bert covid ai app api http https www com org net html json "
    "iphone android apple google china beijing shanghai tokyo seoul paris berlin"
).split()
_EN_CASED = "The A I China Beijing Apple Google BERT GPT COVID Hello World Paris Berlin".split()
_ACCENTED = ("café résumé naïve über straße garçon señor niño mañana déjà élève château "
             "façade coöperate jalapeño piñata fiancé noël crème brûlée").split()
_SUFFIXES = ("s es ed ing er ers est ly tion tions ment ments ness able ible al ial ic ist "
             "ism ize ise ful less y en or ity ive ous ary ery ance ence ant ent th ure "
             "age ship hood ward wise ish ese gram graph logy phone net app").split()
_NUMBERS = ["00", "10", "12", "20", "24", "30", "50", "100", "1000", "2019", "2020", "2021",
            "2022", "2023", "2024", "2025", "3g", "4g", "5g"]
_NUMBER_PIECES = ["##00", "##000", "##0s", "##th", "##st", "##nd", "##rd", "##g", "##kg",
                  "##km", "##mm", "##cm", "##ml", "##gb", "##mb"]


def _chars(*ranges: tuple[int, int]) -> list[str]:
    return [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)]


def _dedupe(tokens) -> list[str]:
    seen, out = set(), []
    for t in tokens:
        if t and t not in seen and not any(c.isspace() for c in t):
            seen.add(t)
            out.append(t)
    return out


def vocab_tokens() -> list[str]:
    """The vocabulary, one token per id, in id order."""
    hanzi = _dedupe("".join(_COMMON_HANZI) + "".join(_WORDS["zh"]) + "".join(
        c for w in _WORDS["ja"] for c in w if "\u4e00" <= c <= "\u9fff"))
    kana = _chars((0x3041, 0x3093), (0x30A1, 0x30F3)) + ["ー"]
    hangul = _dedupe(c for w in _WORDS["ko"] for c in w)
    latin_words = _dedupe(w.lower().strip("¿¡") for lang in ("de", "fr", "es")
                          for w in _WORDS[lang])
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    upper = [c.upper() for c in letters]
    digits = [str(d) for d in range(10)]
    tokens = (
        _SPECIALS
        + list(_ASCII_PUNCT) + digits + letters + upper
        + list(_LATIN1) + list(_GREEK_CYRILLIC) + list(_SYMBOLS) + list(_FULLWIDTH)
        + kana + hangul + hanzi + _EMOJI
        + _EN_WORDS + [w.lower() for w in _WORDS["en"]] + _EN_CASED + _ACCENTED
        + latin_words + _NUMBERS
        + ["##" + s for s in _SUFFIXES] + ["##" + c for c in letters + digits]
        + ["##" + c for c in "éèêëàâäçñöüß"] + ["##" + c for c in _GREEK_CYRILLIC[:19] + "ς"]
        + _NUMBER_PIECES
        + ["##" + c for c in hangul]
        + ["##" + c for c in hanzi[:400]]
    )
    tokens = _dedupe(tokens)
    assert tokens[:106] == _SPECIALS, "special-token layout must come first"
    return tokens


def write_vocab(path) -> Path:
    """Write vocab.txt (one token per line, UTF-8, trailing newline); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(vocab_tokens()) + "\n", encoding="utf-8")
    return path


def read_vocab(path) -> dict[str, int]:
    """token -> id, as HF's BERT tokenizers read vocab.txt: the line number, the
    line without its trailing newline, a repeated token keeping its last id."""
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            vocab[line.rstrip("\n")] = i
    return vocab


if __name__ == "__main__":
    toks = vocab_tokens()
    print(f"{len(toks)} tokens; [UNK]={toks.index('[UNK]')} [CLS]={toks.index('[CLS]')} "
          f"[SEP]={toks.index('[SEP]')} [MASK]={toks.index('[MASK]')}")
