"""SSR: transcript + speaking style. OSUM tag ``<TRANSCRIBE> <STYLE>``; target ``"transcript<新闻科普>"``.

The labels are OSUM's 8 Chinese style names; each has an English gloss (``news_science`` ...) for docs and
UIs, accepted as an alias. Raw corpus tags are remapped as OSUM's ``global_style_dict`` does.
"""

from __future__ import annotations

from osum.tasks.base import LabelField, Task

STYLE = LabelField(
    name="style",
    values=("新闻科普", "恐怖故事", "童话故事", "客服", "诗歌散文", "有声书", "日常口语", "其他"),
    aliases={
        "朗读": "新闻科普",
        "科普百科": "新闻科普",
        "悬疑恐怖": "恐怖故事",
        "诗歌": "诗歌散文",
        "散文": "诗歌散文",
        "武侠评书": "有声书",
        "小说": "有声书",
        "历史": "有声书",
        "科幻": "有声书",
        "对话": "日常口语",
        "口语": "日常口语",
        "幽默": "其他",
    },
    gloss={
        "新闻科普": "news_science",
        "恐怖故事": "horror_story",
        "童话故事": "fairy_tale",
        "客服": "customer_service",
        "诗歌散文": "poetry_prose",
        "有声书": "audiobook",
        "日常口语": "daily_conversation",
        "其他": "other",
    },
)

SSR = Task(
    name="ssr",
    tag="<TRANSCRIBE> <STYLE>",
    description="speaking style recognition: transcript, then a style tag",
    label_fields=(STYLE,),
)
