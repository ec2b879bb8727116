"""Deterministic multilingual text for tokenizer training and parity tests.

Two consumers:

* ``corpus_lines`` feeds SentencePiece training for the tiny test checkpoint.
  The goal is a vocabulary that exercises the same code paths as the real
  XLM-R one: many scripts, scripts without spaces (CJK, Thai), combining
  marks (Devanagari, Thai), right-to-left text, digits, URLs and emoji.
* ``sample_texts`` is the fixed list of strings whose token ids the C++
  tokenizer must reproduce exactly.  It deliberately includes inputs that
  hit normalization (NFKC, whitespace folding) and unknown characters.

The word lists are intentionally small: with ``character_coverage=1.0``
every distinct character becomes a mandatory piece, and the SentencePiece
trainer refuses a vocabulary smaller than the character set.  Keeping the
corpus at a few hundred distinct characters leaves room for real subword
pieces in a 1000-piece vocabulary.
"""

from __future__ import annotations

import random

# --- per-language word lists (written for this project) ---------------------

_WORDS = {
    "en": ("the river city market green house small quick answer search engine "
           "ranking model query passage document weather morning evening train "
           "station library music garden window coffee bread water mountain "
           "computer network language reading writing history science people "
           "children teacher friendly important because between without").split(),
    "de": ("der die das und Straße groß schön Mädchen Bäume Grüße Käse über "
           "für müssen Fußball Brücke Häuser möglich Übung wählen heißen "
           "Frühstück Schlüssel Gemüse Tür Stadt Wasser Zeitung gestern").split(),
    "fr": ("le la les une été où déjà français garçon château hôpital élève "
           "forêt fenêtre crème naïve Noël œuvre cœur très après bientôt "
           "leçon reçu voilà être ça").split(),
    "es": ("el los niño mañana corazón canción España año señor pequeño "
           "música árbol camión jardín está también rápido ¿dónde ¡hola "
           "información ciudad fútbol").split(),
    "ru": ("привет мир город река книга школа время человек работа вода "
           "солнце ночь день хлеб молоко язык поиск ответ вопрос сегодня "
           "завтра хорошо ёлка объём съезд").split(),
    "el": ("καλημέρα κόσμος θάλασσα ήλιος νερό βιβλίο σπίτι δρόμος γλώσσα "
           "αγάπη χρόνος ψωμί φίλος ερώτηση απάντηση πόλη").split(),
    "ar": ("مرحبا العالم كتاب مدينة ماء شمس قمر بيت مدرسة سؤال جواب لغة "
           "البحث اليوم غدا شكرا جميل").split(),
    "he": ("שלום עולם ספר עיר מים שמש בית בית־ספר שאלה תשובה שפה היום מחר "
           "תודה יפה חיפוש").split(),
    "hi": ("नमस्ते दुनिया किताब शहर पानी सूरज घर विद्यालय प्रश्न उत्तर भाषा "
           "आज कल धन्यवाद सुंदर खोज हिन्दी").split(),
    "zh": ("我们 你好 世界 中国 北京 上海 学习 工作 今天 明天 天气 很好 "
           "问题 答案 搜索 引擎 排序 模型 文档 语言 城市 河流 图书馆 音乐 "
           "电脑 网络 朋友 老师 学生 吃饭 喝水 时间 经济 历史").split(),
    "ja": ("こんにちは ありがとう 東京 日本語 今日 明日 天気 学校 先生 "
           "学生 電車 駅 図書館 コーヒー パン 水 山 川 検索 エンジン "
           "ランキング モデル です ます した いる ある から まで").split(),
    "ko": ("안녕하세요 감사합니다 서울 한국어 오늘 내일 날씨 학교 선생님 "
           "학생 기차 역 도서관 커피 빵 물 산 강 검색 엔진 질문 대답").split(),
    "th": ("สวัสดี ขอบคุณ กรุงเทพ ภาษาไทย วันนี้ พรุ่งนี้ อากาศ โรงเรียน "
           "ครู นักเรียน รถไฟ ห้องสมุด กาแฟ ขนมปัง น้ำ ภูเขา แม่น้ำ ค้นหา").split(),
}

# Scripts written without spaces between words.
_NO_SPACE = {"zh", "ja", "th"}

_END_PUNCT = {
    "zh": ["。", "！", "？"], "ja": ["。", "！", "？"], "ar": [".", "؟", "!"],
    "hi": ["।", "?", "!"], "el": [".", ";", "!"], "es": [".", "?", "!"],
}
_DEFAULT_END = [".", ".", ".", "!", "?", "…", ":"]

_EMOJI = ["😀", "😂", "👍", "🎉", "❤️", "🔥", "🚀", "🌍", "☕", "✅", "🙂", "📚"]
_DOMAINS = ["example.com", "wikipedia.org", "test.de", "beispiel.net", "docs.io"]
_PATHS = ["wiki/Berlin", "search?q=rerank&lang=en", "a/b/c.html", "index.php?id=42",
          "news/2024/05/01", "user_name/repo#readme"]
_SYMBOLS = ["(", ")", "[", "]", "\"", "'", "«", "»", "„", "“", "”", "—", "-", "/",
            "&", "%", "#", "@", "+", "=", "*", "€", "$", "£", "¥", "°", "§", "~"]
_LANGS = sorted(_WORDS)


def _capitalize(lang: str, word: str) -> str:
    # Only alphabets with case; str.capitalize would lowercase the rest.
    if lang in ("en", "de", "fr", "es", "ru", "el") and word[:1].isalpha():
        return word[:1].upper() + word[1:]
    return word


def _number(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return str(rng.randrange(10))
    if kind == 1:
        return str(rng.randrange(1900, 2031))
    if kind == 2:
        return f"{rng.randrange(1000)}.{rng.randrange(100):02d}"
    if kind == 3:
        return f"{rng.randrange(1, 100)}%"
    return f"{rng.randrange(1, 13):02d}:{rng.randrange(60):02d}"


def _url(rng: random.Random) -> str:
    scheme = rng.choice(["https://", "http://", "https://www."])
    return f"{scheme}{rng.choice(_DOMAINS)}/{rng.choice(_PATHS)}"


def _sentence(rng: random.Random, lang: str) -> str:
    words = [rng.choice(_WORDS[lang]) for _ in range(rng.randint(3, 12))]
    words[0] = _capitalize(lang, words[0])
    # Sprinkle extras so digits, URLs, emoji, symbols and code-switching
    # appear in context rather than only as isolated lines.
    extras = []
    if rng.random() < 0.35:
        extras.append(_number(rng))
    if rng.random() < 0.10:
        extras.append(_url(rng))
    if rng.random() < 0.15:
        extras.append(rng.choice(_EMOJI))
    if rng.random() < 0.15:
        extras.append(rng.choice(_WORDS[rng.choice(_LANGS)]))
    if rng.random() < 0.20:
        s = rng.choice(_SYMBOLS)
        extras.append(s + rng.choice(_WORDS[lang]) + s if s in "\"'" else s)
    for e in extras:
        words.insert(rng.randrange(len(words) + 1), e)
    sep = "" if lang in _NO_SPACE and rng.random() < 0.8 else " "
    text = sep.join(words)
    if rng.random() < 0.15:
        # A comma-joined second clause.
        comma = "，" if lang in ("zh", "ja") else ","
        more = sep.join(rng.choice(_WORDS[lang]) for _ in range(rng.randint(2, 5)))
        text = f"{text}{comma}{'' if sep == '' else ' '}{more}"
    return text + rng.choice(_END_PUNCT.get(lang, _DEFAULT_END))


def corpus_lines(seed: int = 0, n: int = 4000) -> list[str]:
    """Return ``n`` deterministic lines of mixed-language text.

    Each line holds one to three sentences, occasionally from different
    languages (mixed-script lines are common in real reranking data).
    """
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        lang = rng.choice(_LANGS)
        parts = [_sentence(rng, lang)]
        for _ in range(rng.choice([0, 0, 1, 2])):
            other = lang if rng.random() < 0.7 else rng.choice(_LANGS)
            parts.append(_sentence(rng, other))
        lines.append(" ".join(parts))
    return lines


def passage(rng: random.Random, lang: str | None = None, sentences: int = 5) -> str:
    """A paragraph of ``sentences`` sentences; used to build test pairs."""
    return " ".join(_sentence(rng, lang or rng.choice(_LANGS)) for _ in range(sentences))


def query(rng: random.Random, lang: str | None = None) -> str:
    """A short search-style query (2-6 words, no final punctuation)."""
    lang = lang or rng.choice(_LANGS)
    sep = "" if lang in _NO_SPACE else " "
    return sep.join(rng.choice(_WORDS[lang]) for _ in range(rng.randint(2, 6)))


def sample_texts() -> list[str]:
    """Fixed strings for slow/fast/C++ tokenizer parity checks.

    None of them contains a literal special token (``<s>``, ``</s>``,
    ``<pad>``, ``<unk>``, ``<mask>``): HuggingFace splits those out of raw
    text as specials, which is behaviour the engine does not reproduce.
    """
    long_word = ("abcdefghijklmnopqrstuvwxyz" * 12)[:300]
    return [
        # plain scripts
        "The quick answer is in the small library near the river.",
        "Die Straße ist groß und schön; Mädchen essen Käse über Brücken.",
        "Où est le château? Déjà l'élève a reçu une leçon très française.",
        "¿Dónde está el niño? ¡Hola, señor! La canción de mañana.",
        "Привет, мир! Сегодня хорошая погода, объём ёлки большой.",
        "Καλημέρα κόσμε! Η θάλασσα και ο ήλιος.",
        "مرحبا بالعالم، هذا كتاب جميل؟",
        "שלום עולם, זה ספר יפה.",
        "नमस्ते दुनिया! यह हिन्दी भाषा का प्रश्न है।",
        "我们今天在北京学习中文，天气很好。",
        "こんにちは、東京の図書館でコーヒーを飲みました。",
        "カタカナとひらがなと漢字が混ざった日本語です",
        "안녕하세요, 서울의 날씨는 오늘 좋습니다.",
        "สวัสดีครับ วันนี้อากาศดีมาก",
        # digits, punctuation, URLs, emoji
        "1234567890 3.14159 -42 +7 1,000,000 2024-05-01 12:30",
        "Price: €19.99 (was $25); 50% off!!! #deal @shop ~ok~",
        "See https://www.example.com/search?q=rerank&lang=en#top for details.",
        "mail me: first.last+tag@beispiel.net or visit http://test.de/a/b/c.html",
        "Great job 👍🎉🔥 let's go 🚀",
        "...,,,;;;:::!!!???---___***",
        "\"quoted\" 'single' «guillemets» „Anführungszeichen“ “curly”",
        # mixed scripts in one string
        "BGE reranker 排序模型 для поиска und Suche – ranking للبحث 🔍",
        "Tokyo東京Seoul서울Moscowмосква",
        "abcабвαβγאבגابج一二三あいうアイウ가나다กขค",
        "COVID-19疫情2020年 and GPT-4 モデル",
        # whitespace handling
        "  leading spaces",
        "trailing spaces   ",
        "multiple     internal      spaces",
        "tab\tseparated\tvalues",
        "line one\nline two\r\nline three",
        "   \t  mixed \n\t whitespace  \t ",
        "no\u00a0break\u00a0space and ideographic\u3000space",
        "zero\u200bwidth\u200bspace and soft\u00adhyphen",
        # NFKC-sensitive input
        "ﬁnance ﬂow ﬀ ligatures",
        "circled ① ② ③ and roman Ⅻ ⅷ",
        "full-width ＡＢＣ ａｂｃ １２３ ！？",
        "half-width ｶﾀｶﾅ ﾃｽﾄ",
        "x² + y³ = z¹⁰, H₂O, ½ ¼ ¾",
        "™ ℃ № ㎏ ㍻ Å",
        # combining marks
        "cafe\u0301 re\u0301sume\u0301 nai\u0308ve",
        "A\u030a vs \u00c5 vs \u212b",
        "o\u0302\u0323 stacked combining",
        # decomposed Vietnamese and doubled marks: HF's fast Precompiled
        # normalizer works per grapheme and can drop trailing marks here
        "Tie\u0302\u0301ng Vie\u0323\u0302t",
        "e\u0301\u0301 n\u0303\u0301 a\u0302\u0323",
        "\uff21\u0301 \ufb01\u0301 \u2460\u0301",
        "NFD Hangul \u1100\u1161\u11a8 \u1109\u1165\u110b\u116e\u11af",
        "ÀÉÎÕÜ Ünïcödé ẞ ß ﬆ uppercase accents",
        "Hindi nukta \u0958\u0959 क़ ख़ ज़",
        "Arabic presentation forms ﻻ ﺍﻟﻌﺮﺑﻴﺔ",
        # characters missing from the training corpus -> <unk>
        "rare CJK 龘 𠀀 𪚥 and 鱻",
        "rare emoji 🦩 🫠 🪐 here",
        "emoji sequences 👩‍💻 🇩🇪 👍🏽 ❤️",
        "math ∮ ∇ ⊕ ≠ ≤ ≥ ∞",
        "old script ᚠᚢᚦ and ꦲꦏ",
        # length extremes
        long_word,
        "",
        " ",
        "a",
        "。",
        # markup-like strings (no literal special tokens)
        "<div class=\"x\">Hello <b>world</b></div>",
        "<p>Paragraph</p><br/>",
        "[CLS] text [SEP] more [MASK]",
        "{\"key\": \"value\", \"n\": [1, 2, 3]}",
        "def f(x): return x**2  # comment",
        "<S> <PAD> < s > </ s>",
        "SELECT * FROM docs WHERE id = 7;",
    ]


def tokenizer_json_texts() -> list[str]:
    """Strings beyond ``sample_texts`` for the tokenizer.json reader's parity test.

    They aim at the places where tokenizers' pipeline components differ: scripts and marks,
    emoji sequences, control characters, whitespace runs, very long words, code, full-width
    forms, case mappings, and literal special and added tokens (which the engine reads as text
    when they are special).
    """
    letters = ("abcdefghijklmnopqrstuvwxyz" * 200)[:5000]
    return [
        # scripts and marks
        "日本語のテキストと漢字、ひらがな、カタカナ。ｶﾀｶﾅも。",
        "ㄱㄴㄷ 한글 \u1112\u1161\u11ab\u1100\u1173\u11af 한국어",
        "น้ำ ก้อน ไม่ใช่ ภาษาไทยง่ายนิดเดียว",
        "مَرْحَبًا بِكُمْ — שָׁלוֹם עֲלֵיכֶם",
        "क्षत्रिय श्रीमान् द्वार हिन्दी॰ ज़िंदगी",
        "می‌خواهم بروم، Persian ZWNJ",
        "Z\u0324\u0354\u0367\u0311\u0313a\u0308\u0356\u032d\u0308\u0307l\u036e\u0312\u036bg\u030c\u0317\u035a\u031ao",
        "\u0301leading mark and lone \u0308 marks",
        "Ω K Å ﬀ ﬁ ﬂ ﬃ ﬄ 豈 更 車",
        "ǅ ǈ ǋ titlecase, İstanbul ISTANBUL ıi İI",
        "ΟΔΟΣ ὈΔΥΣΣΕΎΣ σς STRASSE Straße ẞ",
        # emoji sequences
        "👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 👩🏿\u200d🔬 family",
        "👋🏻👋🏼👋🏽👋🏾👋🏿 skin tones",
        "🇯🇵🇺🇸🇪🇺 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f flags",
        "1️⃣ #️⃣ ☺︎ ☺️ keycaps and selectors a🏽",
        # control characters and whitespace
        "a\x00b\x01c\x07d\x1be\x7ff\x85g\u200eh\u202ei\ufeffj",
        "\x00",
        "null\x00byte\x00",
        "a\t\tb\r\rc\n\n\nd",
        "\r\n\r\n",
        "a\r\nb\rc\nd",
        "     ",
        "\t",
        "\n",
        "word  \n  word\t \t",
        "x\u2003\u2009y\u205fz\u3000\u3000w\u00a0\u00a0v",
        " " * 300 + "spaces" + " " * 300,
        "\ue000\uf8ff private \U000f0000 use \U000e0100 selectors",
        "\ufffd replacement \ufffd\ufffd",
        # long words
        letters,
        "1234567890" * 300,
        "中文" * 1000,
        "Ab1" * 700,
        # URLs and code
        "https://example.com/a/b?c=d&e=f#g ftp://user:pass@host:21/path www.test.de/Straße",
        "for (int i = 0; i < n; ++i) { sum += a[i]; }",
        "def f(x):\n    return x ** 2\n\n\tprint(f(3))",
        "#include <vector>\nint main() { return 0; } // done",
        "<script>alert('x')</script> x => x * 2 && y || z",
        # full-width and numbers
        "ＨＥＬＬＯ　ＷＯＲＬＤ！１２３ （括号）【方括号】「引号」",
        "123456789 1,234,567.89 ١٢٣٤٥ ߁߂߃ 一二三 ⅠⅡⅢ ①②③ 3.14e-10 0x1F",
        "I'm you're he's we've they'll I'd don't CAN'T WON'T It'S 's 're",
        # literal special and added tokens
        "<s>hello</s> <pad><unk><mask> </s></s>",
        "[CLS] [SEP] [PAD] [MASK] [UNK] [CLS]x[SEP]",
        "<|endoftext|>text<|endoftext|> <|im_start|>system\nYou are helpful.<|im_end|>",
        "<|begin_of_text|>Hello<|end_of_text|> <|reserved_special_token_0|>",
        "<think>plan it</think>answer <think> spaced </think>",
        "<extra_id_0> fill <extra_id_1> in <extra_id_99>",
        "|||IP_ADDRESS||| 1.2.3.4 |||EMAIL_ADDRESS|||",
        "hello world Hello World HELLO WORLD helloworld",
        "Straße strasse STRASSE Strasse",
        "COVID COVID-19 COVIDs xCOVID (COVID) covid",
        "<ent>Paris</ent> <ent>  spaced  </ent> a <ent> b",
        "[NEW]token [NEW] token",
        "<0x41><0xE4> ▁ ▁▁ _ Ġ Ċ ĠĠ",
    ]
