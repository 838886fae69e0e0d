"""Word lists that fill the sentence templates of :mod:`osum.data.synth.text` (all written for this corpus).

Each entry is a slot name -> tuple of fillers. Fillers are plain English words a TTS engine reads well: no
digits, no abbreviations, no hyphens (SRWT needs one token per spoken word).
"""

from __future__ import annotations

from types import MappingProxyType


def _w(spec: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in spec.split("|") if item.strip())


LEXICON = MappingProxyType(
    {
        # ---- general ---------------------------------------------------------------------------------
        "name": _w(
            "Anna|Ben|Clara|David|Emma|Frank|Grace|Henry|Isabel|Jack|Karen|Leo|Maria|Nathan|Olivia|Peter|"
            "Rachel|Samuel|Tina|Victor|Wendy|Oscar|Lucy|Martin|Nora|Paul|Sophie|Thomas|Helen|George|Alice|"
            "Daniel|Julia|Simon|Laura|Adam|Mia|Robert|Eva|Hugo"
        ),
        "person": _w(
            "teacher|doctor|farmer|baker|driver|nurse|painter|student|neighbor|pilot|gardener|writer|"
            "musician|engineer|fisherman|librarian|waiter|carpenter|scientist|shopkeeper"
        ),
        "relative": _w("sister|brother|mother|father|uncle|aunt|cousin|grandmother|grandfather|friend"),
        "noun": _w(
            "lamp|basket|bicycle|blanket|bottle|bucket|camera|candle|chair|clock|coat|cup|desk|drum|"
            "envelope|guitar|hammer|jacket|kettle|key|kite|ladder|letter|map|mirror|notebook|painting|"
            "pencil|piano|pillow|plate|radio|ribbon|rope|scarf|shovel|spoon|suitcase|table|teapot|"
            "telescope|ticket|towel|umbrella|vase|wallet|window|wheel|boat|box"
        ),
        "adj": _w(
            "old|new|red|blue|green|yellow|heavy|light|small|large|broken|shiny|wooden|metal|dusty|clean|"
            "strange|beautiful|tiny|enormous|round|square|soft|bright|dark|quiet|noisy|cheap|expensive|"
            "favorite|plain|striped|painted|empty|full|warm|cold|smooth|rough|simple"
        ),
        "adj2": _w(
            "missing|ready|too small|too heavy|still wet|almost new|very useful|quite expensive|"
            "hard to find|easy to carry|broken again|perfectly clean"
        ),
        "verb_past": _w(
            "found|painted|carried|repaired|moved|washed|borrowed|dropped|bought|sold|opened|cleaned|"
            "wrapped|hid|lost|returned|measured|checked|lifted|polished|ordered|packed|counted|shared|"
            "noticed|described|photographed|delivered|replaced|forgot"
        ),
        "verb_base": _w(
            "fix|clean|move|paint|check|pack|return|wrap|measure|replace|sell|find|open|carry|wash"
        ),
        "place": _w(
            "in the kitchen|at the station|near the window|under the table|in the garden|on the shelf|"
            "behind the door|at the market|in the garage|by the river|on the train|in the office|"
            "at the library|in the attic|on the balcony|next to the bed|at the school|in the car|"
            "on the roof|in the basement|at the harbor|in the hallway|at the bakery|on the bridge"
        ),
        "time": _w(
            "yesterday|this morning|last week|on Monday|after lunch|before dinner|last night|at noon|"
            "two days ago|on Sunday afternoon|early today|late in the evening|last summer|this weekend|"
            "a moment ago|last year|on Friday|at dawn|during the storm|after school"
        ),
        "future": _w(
            "tomorrow|the end of the week|next Monday|the guests arrive|it gets dark|the shop closes|"
            "the holidays|the rain starts|lunch|the meeting"
        ),
        "town": _w(
            "Bristol|Denver|Oxford|Boston|Dublin|Glasgow|Seattle|Chester|Portland|Leeds|Austin|Bath|"
            "Cambridge|Phoenix|York|Lancaster|Brighton|Houston"
        ),
        "weekday": _w("Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"),
        "month": _w("January|February|March|April|May|June|July|August|September|October|November|December"),
        "food": _w(
            "coffee|pizza|sandwiches|noodles|soup|cake|tea|ice cream|pancakes|salad|rice|cookies|fruit|"
            "burgers|bread|chips"
        ),
        "clock": _w(
            "nine o'clock|ten thirty|half past two|a quarter to five|noon|eight in the morning|"
            "seven in the evening|eleven fifteen"
        ),
        # ---- news and science ------------------------------------------------------------------------
        "institution": _w(
            "national university|marine institute|space agency|city hospital|climate center|"
            "public health office|research laboratory|science museum|geological survey|botanical garden"
        ),
        "sci_subject": _w(
            "certain bacteria|young stars|migrating birds|deep sea corals|honey bees|tiny crystals|"
            "ancient glaciers|desert plants|some spiders|solar winds|forest fungi|electric eels"
        ),
        "sci_verb": _w(
            "absorb|produce|detect|store|reflect|survive without|release|respond to|change color in|"
            "communicate through"
        ),
        "sci_object": _w(
            "ultraviolet light|large amounts of carbon|magnetic fields|extreme heat|sound waves|"
            "very little water|chemical signals|salt water|electric currents|low temperatures"
        ),
        "stat": _w(
            "the price of bread|the number of visitors|public transport use|rainfall|unemployment|"
            "the sale of electric cars|average rent|the number of students|energy demand|tourism"
        ),
        "percent": _w("two|three|four|five|six|seven|eight|ten|twelve|fifteen|twenty"),
        "period": _w("month|year|quarter|season|week"),
        "facility": _w(
            "library|bridge|swimming pool|hospital wing|railway line|bus station|concert hall|museum|"
            "sports center|park"
        ),
        "weather": _w(
            "heavy rain|strong winds|a heat wave|thick fog|snow storms|high tides|freezing temperatures|"
            "thunderstorms"
        ),
        "region": _w(
            "the northern coast|the western valleys|the capital|several southern towns|the mountain roads|"
            "the eastern islands|farmers in the north|the river delta"
        ),
        "habit": _w(
            "walking every day|sleeping eight hours|eating more vegetables|drinking enough water|"
            "reading before bed|regular exercise|spending time outdoors|learning music"
        ),
        "outcome": _w(
            "memory|heart health|mood|concentration|sleep quality|balance|blood pressure|creativity"
        ),
        "energy": _w("solar power|wind power|rainwater|recycled heat|river water|wood chips"),
        "duration": _w("three years|six months|two winters|a whole decade|eighteen months|four summers"),
        "sci_topic": _w(
            "climate change|the early universe|how memory works|ocean currents|the human immune system|"
            "earthquakes|the origin of life|animal migration"
        ),
        # ---- horror ----------------------------------------------------------------------------------
        "old_place": _w(
            "old mansion|abandoned church|empty hospital|ruined castle|forgotten cellar|boarded up hotel|"
            "lighthouse|farmhouse at the end of the road|closed asylum|crypt"
        ),
        "dark_place": _w("corridor|staircase|attic|cellar|forest|graveyard|well|tunnel|closet|chimney"),
        "horror_thing": _w(
            "pale figure|tall shadow|child in a white dress|faceless man|black dog|crooked shape|"
            "woman without eyes|whispering shadow"
        ),
        "horror_verb": _w("scratch|knock|breathe|whisper|crawl|laugh softly|drag something|hum"),
        "horror_sound": _w(
            "slow footsteps|a faint whisper|scratching|a low moan|the creak of a door|a music box|"
            "heavy breathing|a child singing|a bell ringing"
        ),
        "barrier": _w("wall|locked door|curtain|mirror|floorboards|wardrobe|painting|coffin lid"),
        # ---- fairy tales -----------------------------------------------------------------------------
        "royal": _w(
            "young princess|brave prince|kind old king|clever queen|little knight|shy giant|poor miller|"
            "wise old woman|curious shepherd girl"
        ),
        "fairy_home": _w(
            "golden castle|tiny cottage|tower made of glass|house of gingerbread|palace of ice|hollow tree|"
            "cottage by the lake"
        ),
        "fairy_land": _w(
            "seven mountains|enchanted forest|silver sea|land of clouds|valley of roses|crystal river|"
            "kingdom of sweets"
        ),
        "creature": _w(
            "talking fox|friendly dragon|tiny fairy|magic frog|golden bird|gentle unicorn|clever mouse|"
            "old owl|singing fish"
        ),
        "magic_item": _w("silver wand|golden key|magic spoon|glowing stone|feather|tiny bell|enchanted rose"),
        "fairy_object": _w("pumpkin|old boot|teacup|pebble|broom|loaf of bread|apple|wooden spoon"),
        "fairy_result": _w(
            "a shining carriage|a palace|a flock of birds|a field of flowers|a golden crown|"
            "a sparkling river|a rainbow"
        ),
        "fairy_love": _w(
            "dancing in the moonlight|baking honey cakes|counting the stars|singing to the flowers|"
            "telling stories|collecting shiny stones"
        ),
        # ---- customer service ------------------------------------------------------------------------
        "company": _w(
            "Sunrise Telecom|Bluebird Airlines|Green Valley Bank|Northwind Energy|City Water Services|"
            "Maple Insurance|Harbor Internet|Brightline Shopping"
        ),
        "account_item": _w(
            "order|account|booking|last invoice|delivery status|subscription|payment|refund request"
        ),
        "order_item": _w("parcel|order|replacement card|new router|package|refund|return label|voucher"),
        "delivery": _w(
            "within three working days|by Friday|tomorrow morning|early next week|within two days|"
            "before the weekend"
        ),
        "department": _w("billing|technical support|returns|sales|customer care|complaints"),
        "detail": _w(
            "postal code|date of birth|email address|phone number|full name|booking reference|billing address"
        ),
        # ---- poetry and prose ------------------------------------------------------------------------
        "nature": _w(
            "river|willow|moon|mountain|meadow|old oak|evening star|autumn wind|silent sea|falling snow"
        ),
        "poetic_verb": _w("sleeps|dreams|trembles|whispers|glows|wanders|sighs|listens|waits|sings"),
        "poetic_base": _w("fall|shine|drift|rest|linger|sing|weep|glow|dream|breathe"),
        "sky": _w("silver clouds|the quiet stars|a pale blue sky|the setting sun|the winter moon|the rain"),
        "poetic_noun": _w("the swallows|the roses|the shadows|the waves|the leaves|the fireflies|the bells"),
        "poetic_place": _w(
            "sleeping fields|golden hills|empty shore|garden of my childhood|valley of mist|old stone bridge"
        ),
        "simile": _w(
            "a soft prayer|a forgotten song|a letter never sent|a candle in the dark|a slow river|"
            "a gentle hand"
        ),
        "season": _w("spring|summer|autumn|winter"),
        "day_part": _w("morning|evening|twilight|night|afternoon|dawn"),
        "poetic_adj": _w("gentle|golden|tender|patient|silver|weary|bright|lonely"),
        # ---- audiobook narrative ---------------------------------------------------------------------
        "book_object": _w("letter|diary|old book|door|window|map|photograph|notebook"),
        "narr_place": _w(
            "harbor|empty square|grey sea|little village|railway station|winter fields|city lights|"
            "distant hills"
        ),
        "memory": _w(
            "the summer her father left|the promise he had broken|the last letter from home|"
            "the night of the great fire|the first time they met|the words of the old captain"
        ),
        "ordinal": _w("first|second|third|fourth|fifth|seventh|tenth"),
        "vehicle": _w("train|coach|old ship|bus|carriage|ferry"),
        "chapter": _w("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"),
        "pronoun": _w("she|he"),
        # ---- casual conversation ---------------------------------------------------------------------
        "casual_thing": _w(
            "the game|that new movie|the concert|the show|the match|the party|the video I sent you|"
            "the new cafe"
        ),
        "casual_adj": _w("funny|weird|amazing|boring|awesome|crazy|cool|annoying|good|random"),
        "casual_place": _w("station|office|cinema|gym|mall|airport|park|restaurant"),
        # ---- emotions --------------------------------------------------------------------------------
        "good_news": _w(
            "we won the championship|I got the job|my sister is getting married|the test results are perfect|"
            "our team finally won|you passed the exam|the puppy is home|we are going on holiday"
        ),
        "good_thing": _w("surprise|present|morning|party|dinner|letter|song|day at the beach"),
        "lost_one": _w("my grandmother|my old dog|my best friend|my father|my little cat|my brother"),
        "sad_event": _w(
            "the house is empty|she moved away|nobody came to the party|we lost everything in the fire|"
            "the garden died|he never called back|the shop had to close"
        ),
        "bad_act": _w(
            "touch my things|lie to me|read my letters|break the rules|take my car|ignore me|waste my time"
        ),
        "bad_act_past": _w(
            "broke my window|lied to me|took my keys|forgot the money|ruined the dinner|ignored my calls"
        ),
        "annoyance": _w("your excuses|this noise|waiting for you|your lies|this mess|these delays"),
        "threat": _w(
            "something is in the house|someone is following us|the bridge is collapsing|"
            "the fire is spreading|there is a stranger at the window|the lights just went out"
        ),
        "surprise_news": _w(
            "you built this yourself|the old theater is opening again|she is your twin|"
            "you won the lottery|it is already finished|he is moving to Japan"
        ),
        "surprise_thing": _w(
            "a party for me|to see you here|snow in July|a letter from the king|so many people|this present"
        ),
        "gross_thing": _w("rotten fish|mold|a dead mouse|sour milk|slime|old garbage|a hair|greasy dirt"),
    }
)
