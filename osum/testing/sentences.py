"""Plain English sentences for tests and benchmarks that synthesize speech: none comes from the synthetic corpus'
templates or text sources, so a model cannot pass by having learnt them."""

from __future__ import annotations

PLAIN_SENTENCES: tuple[str, ...] = (
    "the morning train was late again",
    "she planted tomatoes along the garden fence",
    "our neighbours painted their door bright green",
    "please close the window before you leave",
    "the library opens at nine on saturdays",
    "he forgot his umbrella at the station",
    "a small boat drifted across the quiet lake",
    "we need more bread and a bottle of milk",
    "the children built a castle out of sand",
    "my brother works at the hospital downtown",
    "the coffee was too hot to drink",
    "they walked home under the falling snow",
    "the teacher wrote the answer on the board",
    "an old dog slept beside the warm fire",
    "the museum was full of ancient maps",
    "i will call you when the meeting ends",
    "the river flooded the fields last spring",
    "she found a silver coin in the grass",
    "the bakery sells fresh rolls every morning",
    "the wind blew the papers off the desk",
    "he practised the piano for two hours",
    "the bus stop is across the street",
    "a loud noise woke the whole family",
    "the soup needs a little more salt",
    "we watched the stars from the hill",
    "the printer ran out of paper again",
)
