"""The vocabulary narrative.intent_rules reads actions with: telling phrases and object words.

Plain data (regular expressions over the lower-cased action, and word lists), kept apart from
the rules that weigh them. A phrase row is (skill or no-roll kind, pattern[, weight]); a row
without a weight counts PHRASE, enough to beat a check verb ("strike a deal" is negotiation
though "strike" is brawling). Pure: no Django.
"""

from __future__ import annotations

PHRASE = 1.6  # a telling phrase beats a verb: "strike a deal", "take a shot"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _v(*verbs: str) -> str:
    """A regex group matching the verbs' usual forms ("look" -> look, looks, looking, looked)."""
    forms = set()
    for verb in verbs:
        forms |= {verb, verb + "s", verb + "es", verb + "ed", verb + "ing", verb + "d"}
        if verb.endswith("e"):
            forms.add(verb[:-1] + "ing")
        if verb.endswith("y"):
            forms |= {verb[:-1] + "ies", verb[:-1] + "ied"}
        if len(verb) > 2 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
            forms |= {verb + verb[-1] + "ing", verb + verb[-1] + "ed"}
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


_VEHICLE = (
    r"(?:ship|shuttle|gunship|fighter|freighter|cutter|skiff|dropship|tug|rover|speeder|vessel|craft|lander"
    r"|transport|corvette|frigate|hover\w*|\w*bike|car|truck|buggy|jeep|mech|walker|sled|barge|ferry|boat)"
)
_WEAPON = (
    r"(?:rifle|pistol|gun|blaster|carbine|revolver|shotgun|sidearm|"
    r"bow|crossbow|railgun|sniper rifle|launcher)"
)
_BODY = r"(?:leg|arm|shoulder|head|hand|side|chest|face|ribs|wounds?|cuts?|gash|burns?|injur\w+|bite|stump)"

# Telling phrases: (skill or no-roll kind, regex over the lower-cased action[, weight]).
PHRASES: tuple[tuple[str, str] | tuple[str, str, float], ...] = (
    # stealth: unseen, unheard, in the shadows, ducking out of sight
    ("stealth", r"without (?:being|getting) (?:seen|spotted|noticed|heard|detected|caught)"),
    (
        "stealth",
        r"\b(?:unseen|unnoticed|undetected|unheard)\b|\bout of (?:sight|view)\b|\bsne+a?k\w*|\bstealth\w*",
    ),
    (
        "stealth",
        r"\bwithout (?:a sound|making (?:a|any) (?:sound|noise))|\bunder cover of (?:darkness|night)\b",
    ),
    ("stealth", _v("stay", "keep", "remain") + r" (?:hidden|out of sight|low|quiet|in the shadows)\b"),
    ("stealth", _v("slip") + r" (?:past|by|through|into|in|out|away|aboard|behind|between)\b"),
    (
        "stealth",
        _v("duck")
        + r" (?:behind|into|under|down behind|out of)\b|\bhold(?:s|ing)? (?:my|our|his|her|their) breath\b",
    ),
    (
        "stealth",
        r"\b(?:through|in|into|along|within|from|between|under|across) (?:the )?"
        r"(?:shadows|"
        r"darkness|gloom|dark)\b",
        1.2,
    ),
    (
        "stealth",
        _v("move", "walk", "go", "head", "crawl", "creep", "climb", "make")
        + r" (?:my way |our way )?(?:silently|quietly|stealthily|noiselessly|unseen)\b",
    ),
    ("stealth", r"\b(?:silently|quietly|stealthily|noiselessly)\b", 0.6),
    ("stealth", _v("blend") + r" in\b|\bkeep(?:s|ing)? to (?:the )?(?:blind spots?|shadows|cover|dark)\b"),
    (
        "stealth",
        _v("avoid", "evade", "dodge") + r" (?:the )?(?:security|cameras?|drones?|guards?|patrols?|sensors?|"
        r"sentries|spotlights?|searchlights?|sweep)\b",
    ),
    (
        "stealth",
        r"\b(?:under|past|beneath|below) the (?:\w+ )?(?:searchlights?|"
        r"spotlights?|sensor beams?|cameras?|sweep|patrol)\b",
        1.2,
    ),
    # sleight of hand: locks, pockets, palming, planting
    ("sleight of hand", _v("pick") + r" (?:the|a|an|his|her|their|its|that|this) (?:[\w-]+ )?locks?\b"),
    ("sleight of hand", _v("pick") + r" (?:his|her|their|someone's|a|the \w+'s|[\w-]+'s) pockets?\b"),
    (
        "sleight of hand",
        r"\bwithout (?:him|her|them|anyone|anybody|the \w+) (?:noticing|seeing|knowing|feeling)\b",
    ),
    ("sleight of hand", _v("slip") + r" (?:the|a|an|my|his|her|their|some) [\w-]+ (?:into|in|under|onto)\b"),
    (
        "sleight of hand",
        r"\b(?:while|when|as) (?:he|she|they|the [\w-]+|[\w-]+) (?:looks away|"
        r"turns(?: around| away)?|is looking away|isn't looking|is distracted|"
        r"is not looking|talks|is talking|sleeps|is asleep|dozes)\b",
        0.9,
    ),
    (
        "sleight of hand",
        _v("lift", "take", "grab", "snatch", "pinch", "ease", "slide", "tease")
        + r" (?:the |a |an |his |her |their )?(?:[\w-]+ ){1,2}(?:from|off|"
        r"out of) (?:his|her|their|the (?:[\w-]+ )?[\w-]+'s|[\w-]+'s) (?:belt|"
        r"pocket|jacket|coat|vest|bag|holster|hand|desk|wrist|neck|lapel|"
        r"apron)\b",
    ),
    (
        "sleight of hand",
        r"\b(?:up|in|into) (?:my|his|her|their) sleeve\b|\bbefore the (?:pat-?down|search|frisk)\b",
    ),
    # marksmanship: firing, aiming, throwing at something
    ("marksmanship", r"\b(?:open(?:s|ing|ed)? fire|take(?:s)? (?:a )?(?:shot|aim)|pull(?:s)? the trigger)\b"),
    (
        "marksmanship",
        r"\b(?:fire|fires|shoot|shoots|snipe|snipes) (?:at|on|into|a|the|"
        r"my|our|\w+ (?:rounds?|shots?|bolts?))\b",
    ),
    (
        "marksmanship",
        r"\bcovering fire\b|\bwarning shot\b|\bpick(?:s)? (?:\w+ )?off\b|\bgun(?:s)? (?:\w+ )?down\b",
    ),
    ("marksmanship", r"\bwith (?:my|a|his|her|their|the) (?:\w+ )?" + _WEAPON + r"\b", 1.2),
    (
        "marksmanship",
        _v("unload", "empty")
        + r" (?:my|a|the|his|her|their) (?:\w+ )?(?:"
        + _WEAPON[3:-1]
        + r"|clip|magazine|weapon)\b",
    ),
    (
        "marksmanship",
        r"\bput(?:s)? (?:a|one) (?:round|bullet|bolt|slug) (?:through|"
        r"in|into)\b|\b(?:toss|tosses|lob|lobs|throw|throws) (?:a|the|"
        r"my) (?:\w+ )?grenade\b",
    ),
    # brawling: fists and melee
    (
        "brawling",
        r"\bhand[- ]to[- ]hand\b|\bwith (?:my|his|her|their) (?:fists?|bare hands|elbow|knee|forehead)\b",
    ),
    (
        "brawling",
        r"\b(?:headlock|chokehold|armlock|arm lock|uppercut|haymaker|right hook|"
        r"left hook)\b|\bswing(?:s)? (?:my|a|the|his|her) \w+ at\b",
    ),
    (
        "brawling",
        r"\bpin(?:s)? (?:him|her|them|the [\w-]+) (?:against|to|down)\b|"
        r"\bbreak(?:s)? (?:his|her|their|its) (?:arm|leg|nose|neck|jaw|"
        r"wrist|fingers)\b|\bover (?:my|his|her) shoulder\b",
    ),
    (
        "brawling",
        _v("trade", "exchange")
        + r" (?:a few )?(?:blows|punches)\b|\bcome(?:s)? to blows\b|\bthrow(?:s)? (?:a )?punch(?:es)?\b",
    ),
    # athletics (might): forcing, breaking
    (
        "athletics",
        r"\b(?:kick|break|bash|batter|smash|shoulder)(?:s|es|ing|ed)? (?:in|down|open|through) (?:the|a)\b",
    ),
    ("athletics", r"\bforce(?:s|d)? (?:the|a|it|them)? ?[\w -]{0,20}? open\b"),
    # engineering: power, repairs, building
    ("engineering", r"\b(?:power(?:s|ing|ed)? (?:up|on)|bring(?:s)? [\w ]{1,30} (?:back )?online)\b"),
    (
        "engineering",
        r"\bget(?:s|ting)? (?:the |it |that |this )?[\w ]{0,25}(?:running|working|online) again\b",
    ),
    (
        "engineering",
        r"\bhook(?:s)? (?:\w+ ){0,3}up to\b|\bshore(?:s)? up\b|\bseal(?:s)? (?:t"
        r"he|"
        r"a) (?:leak|breach|leaking|crack)",
    ),
    (
        "engineering",
        r"\bset(?:s)? up (?:a|the) (?:trap|tripwire|alarm|charge|bomb|"
        r"generator|relay)\b|\b(?:cobble|knock|throw|lash|bolt)(?:s|ed)? togethe"
        r"r\b",
    ),
    # hacking: through the machine
    (
        "hacking",
        r"\b(?:through|via|from|over) (?:the|their|its|a) (?:terminal|"
        r"network|console|command line|mainframe|admin server|control node|"
        r"computer)\b|\bhotwire",
    ),
    (
        "hacking",
        _v("patch", "plug", "jack", "tap", "dial", "wire")
        + r" (?:\w+ )?(?:into|in to)\b(?! the (?:wound|leg|arm))",
        1.2,
    ),
    (
        "hacking",
        r"\btake(?:s)? (?:remote )?(?:over|control of) (?:the |their |"
        r"its )?(?:[\w'-]+ ){0,3}(?:drones?|systems?|network|cameras?|"
        r"turrets?|security|bots?|robots?|computer|ai|terminal|console|"
        r"feed|mainframe|grid|software|loader|rig|controls|doors?|locks?)\b",
    ),
    ("hacking", r"\btake(?:s)? remote control\b|\bremotely\b|\bmaintenance port\b", 1.0),
    (
        "hacking",
        r"\b(?:use|uses|using|with) (?:my|a|the|his|her|their) (?:cyber)?(?:deck"
        r"|"
        r"slicer|spike|hacking rig|intrusion kit|override chip|decryption key)\b",
    ),
    (
        "hacking",
        r"\bbreak(?:s)? into (?:the |their |its )?(?:[\w'-]+ ){0,2}(?:database|"
        r"system|network|server|computer|mainframe|files|account|terminal|"
        r"records|firmware|registry|accounts)\b",
    ),
    (
        "hacking",
        r"\brun(?:s)? (?:a|an|the|my) (?:\w+ )?(?:exploit|script|program|"
        r"virus|worm|sniffer|cracker|brute[- ]force|intrusion)\b|\b"
        + _v("inject", "upload", "insert", "plant")
        + r" (?:a |an |the |some )?(?:[\w-]+ ){0,3}into (?:the |their |its )?(?:[\w"
        r"'-]+ ){0,3}(?:queue|"
        r"system|network|feed|stream|comms|code|database|buffer|server|"
        r"mainframe|firmware|logs)\b",
    ),
    # piloting: vehicles in motion
    (
        "piloting",
        r"\b(?:take|takes|at) the (?:helm|stick|controls|wheel|yoke)\b|"
        r"\bevasive (?:manoeuvres|maneuvers|action)\b",
    ),
    (
        "piloting",
        _v(
            "swing",
            "bring",
            "turn",
            "take",
            "park",
            "race",
            "put",
            "set",
            "ease",
            "nose",
            "angle",
            "roll",
            "bank",
            "guide",
            "slide",
            "spin",
            "flip",
            "pull",
            "punch",
            "gun",
            "keep",
            "weave",
            "thread",
            "push",
            "drive",
            "steer",
            "ride",
        )
        + r" (?:the|our|my|her|his|their) (?:[\w-]+ )?(?:"
        + _VEHICLE[3:-1]
        + r"|throttle|engines?)\b",
    ),
    (
        "piloting",
        r"\bbarrel roll\b|\b(?:jump|jumps) to (?:lightspeed|hyperspace|"
        r"warp)\b|\bmatch(?:es)? (?:velocity|speed|orbit|course)\b|\bwith (?:our"
        r"|"
        r"the|my) (?:bow|hull|ship)\b",
    ),
    (
        "piloting",
        r"\bbring(?:s)? (?:us|her|it|the ship|our ship) (?:alongside|in|around|about|closer|down|up|into)\b",
    ),
    # persuasion, deception, intimidation, negotiation
    (
        "persuasion",
        r"\btalk(?:s|ing)? (?:\w+ ){1,3}(?:into|down|out of|round)\b|\bwin(?:s)?"
        r" (?:\w+ ){0,3}over\b|"
        r"\b(?:to|onto) (?:our|my) side\b|\bbring(?:s)? (?:\w+ ){1,3}(?:round|"
        r"around)\b",
    ),
    ("persuasion", r"\bappeal(?:s)? to\b|\bmake (?:him|her|them|the \w+) see reason\b"),
    (
        "deception",
        r"\b(?:pass(?:es)? (?:myself|himself|herself|themselves|ourselves) off|"
        r"pretend(?:s|ing)? (?:to be|that|we|i))\b",
    ),
    (
        "deception",
        r"\b(?:pose|posing|poses) as\b|\ba (?:fake|forged|false) (?:\w+ )?(?:id|"
        r"badge|story|identity|pass|name|papers)\b",
    ),
    (
        "deception",
        r"\b(?:make|makes|made) up (?:a|some)\b|\bspin(?:s)? (?:a|some) (?:tale|"
        r"story|yarn|lie)\b|\bcover story\b|\bplay(?:s)? (?:dead|dumb|"
        r"innocent|along|the part)\b|\bact(?:s)? (?:like|as if|as though)\b",
    ),
    (
        "deception",
        r"\b(?:the|a|this) (?:fake|forged|false|counterfeit) \w+ is (?:genuine|"
        r"real|authentic|legit)\b|\bis (?:genuine|real|authentic)\b",
    ),
    ("intimidation", r"\bor (?:else|i'll|we'll|i will|we will|you die|die)\b|\bunless (?:he|she|they|you)\b"),
    (
        "intimidation",
        r"\b(?:i'll|i will|we'll|we will|or i|or we) (?:blow|kill|shoot|"
        r"space|end|break|gut|burn|vent|hurt|bury)\b|\bregret\b",
    ),
    (
        "intimidation",
        r"\bstare(?:s|d)? (?:\w+ )?down\b|\b(?:level|levels|point|points) (?:my|"
        r"his|her|their|a|the) (?:\w+ )?" + _WEAPON + r" at\b",
        1.2,
    ),
    (
        "intimidation",
        r"\b(?:press|presses|hold|holds|put|puts) (?:my|the|a|his|her) (?:knife|"
        r"blade|gun|pistol|blaster|barrel) (?:to|against)\b|\bdemand(?:s|"
        r"ing)? (?:answers|to know|that)\b",
    ),
    (
        "intimidation",
        r"\bmake(?:s)? it (?:very |perfectly |crystal )?clear\b|\b"
        + _v("bark", "snap", "roar", "bellow", "yell", "shout", "growl", "snarl")
        + r" at (?:\w+ ){0,3}to\b",
    ),
    (
        "negotiation",
        r"\b(?:strike|make|cut|close|work out|hammer out)s? (?:a|the|out a) ?(?:deal|bargain|trade)\b",
    ),
    (
        "negotiation",
        r"\bin exchange for\b|\bin return for\b|\b(?:a|my|our|his|her|"
        r"their) (?:\w+ )?(?:cut|share|percentage) of\b",
    ),
    (
        "negotiation",
        r"\boffer(?:s|ing|ed)? (?:\w+ )?(?:\d+|some|a few|fifty|a hundred|double|triple) ?credits\b",
    ),
    (
        "negotiation",
        _v("trade", "barter", "exchange", "sell") + r" (?:[\w'-]+ ){1,4}for (?!the fake|a fake)",
        1.2,
    ),
    (
        "negotiation",
        r"\b(?:propose|proposes|offer|offers) (?:[\w-]+ ){0,2}(?:a|an|"
        r"the) (?:alliance|deal|truce|trade|partnership|contract|exchange)\b|"
        r"\b(?:a )?(?:bigger|larger|fair|better) (?:share|cut|price|deal)\b",
    ),
    # perception, investigation, analysis, lore, navigation, medicine
    ("perception", _v("keep", "stand") + r" (?:watch|guard|lookout|an eye|a lookout)"),
    (
        "perception",
        _v("listen", "watch")
        + r" (?:out )?for\b|\blook(?:s|ing)? out for\b|\bon (?:the )?(?:lookout|alert) for\b",
    ),
    (
        "perception",
        r"\bscan(?:s)? the (?:horizon|skies|crowd|treeline|area|ridge|rooftops|tree line)\b|\b"
        + _v("make", "pick")
        + r" out (?!a (?:route|path|way|course))(?:the|a|an|any|what|who|where|how|shapes|movement)\b",
    ),
    (
        "perception",
        _v("keep")
        + r" (?:my|our|his|her|their|an?) (?:eyes?|ears?) (?:open|peeled|on)\b|\b"
        + _v("feel", "sense", "sniff", "smell")
        + r" for\b",
    ),
    (
        "perception",
        r"\bread(?:s|ing)? (?:his|her|their|its|the [\w-]+'s|[\w-]+'s) (?:face|"
        r"expression|body language|eyes|mood)\b|\bwatch(?:es)? (?:his|"
        r"her|their|its|the [\w-]+'s|[\w-]+'s) (?:hands|eyes|face|movements|"
        r"every move)\b",
    ),
    (
        "investigation",
        _v("look", "search", "hunt", "check", "comb", "scour", "dig", "rummage", "rifle", "sift", "root")
        + r" (?:around |about |through [\w' -]{1,40} |in [\w' -]{1,40} )?for (?:cl"
        r"ues|"
        r"evidence|signs|tracks|traces|prints|anything|something|whatever|"
        r"the|a|an|any|his|her|their|hidden|secret)\b",
    ),
    (
        "investigation",
        r"\b(?:find|finds|work|works|figure|figures) out (?:what|who|where|when|how long|whether)\b",
        0.8,
    ),
    ("investigation", r"\bpiece(?:s)? together\b|\bfor clues\b"),
    (
        "investigation",
        _v("examine", "inspect", "study", "check", "search")
        + r" [\w' -]{1,40} for (?:signs|traces|clues|evidence|tampering|damage|prints|fingerprints|marks)\b",
    ),
    (
        "investigation",
        _v("dig", "go", "look", "comb", "rifle", "sort")
        + r" (?:through|over) (?:the|his|her|their|its|[\w-]+'s) [\w' -]{0,30}(?:l"
        r"og|"
        r"logs|logbook|files|records|papers|desk|belongings|drawers|data|"
        r"manifests?|reports?|documents|notes|messages|emails|footage|"
        r"correspondence|accounts|ledgers?|bags?|pockets|crates?|wreck\w*|"
        r"debris|room|cabin|quarters)\b",
    ),
    (
        "investigation",
        r"\bpat(?:s|ting)? (?:\w+ ){0,2}down\b|\btear(?:s|ing)? (?:\w+ ){1,3}apa"
        r"rt\b|"
        r"\bfollow(?:s|ing)? (?:the |their |his |her )?(?:[\w-]+ )?(?:tracks|"
        r"trail|footprints|prints|marks|blood)\b",
    ),
    (
        "analysis",
        r"\brun(?:s|ning)? (?:a |an |the |some |full |a full )*(?:diagnostics?|"
        r"analysis|analyses|simulations?|tests?|scans?|numbers)\b|\brun(?:s)? (?"
        r":the|"
        r"a|my) [\w-]+ over\b",
    ),
    ("analysis", r"\b(?:figure|figures|work|works) out (?:how|which|why|the pattern|the code)\b(?! long)"),
    ("lore", r"\bwhat (?:i|we) (?:know|learned|remember|heard) (?:about|of)\b|\bthink(?:s)? back\b"),
    (
        "lore",
        _v("draw", "call") + r" (?:on|upon) (?:my|his|her|their|our) (?:[\w-]+ )?(?:knowledge|"
        r"training|studies|memory|memories|education|experience|expertise|"
        r"lore)\b|\bsearch(?:es)? (?:my|his|her|their) memory\b",
    ),
    (
        "navigation",
        r"\b(?:set|lay)s? (?:a|the) course\b|\bfind (?:a|the|our|my) (?:way|"
        r"path|route)\b(?! to (?!the|a|our))",
    ),
    (
        "navigation",
        _v("find", "pick", "choose", "plot", "chart", "plan", "map", "work")
        + r" (?:out )?(?:a|the|our|my) (?:[\w-]+ )?(?:path|route|course|heading|trajectory|jump)\b",
    ),
    (
        "navigation",
        _v("guide", "lead") + r" (?:us|the [\w-]+|them|everyone|the others|our [\w-]+) (?:[\w-]+ )?(?:"
        r"through|"
        r"across|out of|back to|to|past|around|down|along|over)\b",
    ),
    (
        "navigation",
        r"\bwhich (?:direction|way|heading)\b|\b(?:use|uses|using|by) the stars\b|\bstar ?charts?\b",
        1.2,
    ),
    (
        "navigation",
        r"\b(?:calculate|calculates|compute|computes) (?:a|the) (?:jump|"
        r"course|route|trajectory|burn|vector)\b",
    ),
    (
        "medicine",
        r"\bfirst aid\b|\bstop(?:s)? the bleeding\b|\b(?:patch|stitch|"
        r"bandage|sew)(?:es|s)? (?:up )?(?:[\w-]+'s |his |her |their |"
        r"my |the )" + _BODY + r"\b",
    ),
    (
        "medicine",
        r"\b(?:patch|stitch)(?:es)? (?:him|her|them|[\w-]+) up\b(?! the)|"
        r"\buse(?:s)? (?:a|the|my|our|his|her|their) (?:medkit|medpatch|"
        r"med-kit|first[- ]aid kit|stim|stimpack|bandages?|antidote) on\b",
    ),
    (
        "analysis",
        _v("study", "analyse", "analyze", "examine", "review", "check", "read")
        + r" (?:the|my|our|his|her|their) (?:[\w-]+ )?(?:readings|data|scans?|"
        r"samples?|results|telemetry|spectr\w+|sensor logs)\b",
        1.2,
    ),
    ("navigation", r"\bwhere (?:we|i) (?:are|am)\b|\bour (?:position|location|bearings|heading)\b", 1.2),
    (
        "hacking",
        (
            r"\b(?:from|through|via|at|on) (?:the|a|their|its) (?:[\w-]+ )?(?:console|"
            r"terminal|keyboard|command line|control panel)\b"
        ),
        1.2,
    ),
    (
        "engineering",
        (
            r"\bget(?:s|ting)? (?:the |it |that |this |our |my )?(?:[\w-]+ ){0,3}(?:working|"
            r"running|going|started|online|fixed)\b"
        ),
    ),
    (
        "piloting",
        _v("outfly", "out-fly", "outmanoeuvre", "outmaneuver")
        + r"\b|\bpull(?:s)? (?:up|out of the dive|out of the spin)\b(?! a)",
    ),
    (
        "sleight of hand",
        _v("pick")
        + r" (?:the|a|an|his|her|their|its|that|this) (?:[\w-]+ )?(?:\w*locks?|cuffs|handcuffs|latch)\b",
    ),
    (
        "negotiation",
        _v("offer")
        + (
            r" (?:[\w'-]+ ){0,3}(?:half|a third|a share|some of|part of|a cut|"
            r"double|credits|payment|money|a reward|a percentage)\b"
        ),
        1.2,
    ),
    ("perception", _v("listen") + r" (?:at|through|closely|carefully|in on|hard)\b|\beavesdrop\w*", 1.2),
    (
        "medicine",
        _v("give", "apply", "use", "administer", "inject")
        + (
            r" (?:[\w'-]+ ){0,3}(?:painkillers?|stims?|stimpacks?|antidote|"
            r"antitoxin|medpatch|medkit|bandages?|sedatives?|morphine|splint|"
            r"tourniquet|medicine|meds|pills|first aid|anti-rad\w*|adrenaline)\b"
        ),
        1.2,
    ),
    (
        "engineering",
        r"\b(?:engines?|thrusters?|reactor|generator|core|drive|motor|systems?|console|lights|relay|lift)"
        r" (?:back )?to life\b",
    ),
    ("marksmanship", r"\bput(?:s)? (?:a|one|another) (?:shot|round|bullet|bolt|slug) (?:through|in|into)\b"),
    (
        "brawling",
        _v("drive", "ram", "bury", "sink", "slam", "smash")
        + r" (?:my|his|her|their|a) (?:elbow|fist|knee|boot|shoulder|forehead|heel)s? into\b",
    ),
    (
        "brawling",
        _v("duck", "dodge", "block", "parry", "sidestep")
        + (
            r" (?:under |past |around )?(?:his|her|their|the [\w-]+'s|its) (?:swing|"
            r"punch|blow|strike|blade|attack|fist|jab|kick|lunge)\b"
        ),
    ),
    (
        "persuasion",
        (
            r"\bmake (?:him|her|them|the [\w-]+|[\w-]+) (?:see|understand|"
            r"realise|realize|believe) (?:that|reason|sense|how|why)\b"
        ),
        1.2,
    ),
    (
        "deception",
        (
            r"\b(?:though|although|even though|knowing) (?:i|we) know (?:better|"
            r"it's not true|that's not true|it isn't true)\b|\bwhich is a lie\b|"
            r"\b(?:a|the) lie\b"
        ),
    ),
    (
        "intimidation",
        (
            r"\b(?:has|have|got|gets) (?:\w+ )?(?:seconds|minutes|breaths) to\b|"
            r"\b(?:slam|slams|bang|bangs|pound|pounds) (?:my|his|her|a) fist (?:on|"
            r"against|into)\b"
        ),
    ),
    # no roll
    (
        "rest",
        r"\bcatch(?:es)? (?:my|his|her|their|our) breath\b|\bmake(?:s)? camp\b|"
        r"\bget(?:s)? some (?:sleep|rest)\b",
    ),
    ("rest", r"\blie(?:s)? down\b|\blay down to (?:rest|sleep)\b|\btake a (?:break|breather|nap)\b"),
    ("act", r"\bpick(?:s|ing)? up\b|\bput(?:s)? (?:on|away|down)\b"),
)
# Phrases that count only in what is said to someone: "I tell the guard we're the relief shift".
TALK_PHRASES: tuple[tuple[str, str, float], ...] = (
    (
        "deception",
        r"\b(?:we're|we are|i'm|i am|this is|they're) (?:the|a|an|with|"
        r"from|here (?:to|for|on)|just|only|expected|authori[sz]ed|cleared|"
        r"allowed|on (?:official|wardens?|company) business)\b",
        1.0,
    ),
    (
        "deception",
        r"\bso (?:that )?(?:they|he|she|the [\w-]+) (?:will |would |won't |"
        r"doesn't |don't )?(?:leave|back off|let|go away|stand down|ignore|"
        r"believe|think|stay away|look away|lose interest|drop it)\b",
        0.7,
    ),
)


# Object and context words: they tip a close call, never make a roll on their own.
CUES: dict[str, tuple[str, ...]] = {
    "hacking": _words(
        "terminal firewall password passcode encryption encrypted network mainframe computer keypad "
        "camera cameras feed virus malware software server database admin root ice cyberdeck deck datapad "
        "security lockout logs files code codes firmware ai drone drones signal"
    ),
    "engineering": _words(
        "power conduit conduits reactor generator engine engines coolant wiring wires circuit circuits "
        "fuse capacitor battery pipe pipes valve pump scrubbers filter hull breach thruster thrusters "
        "shield shields gears motor relay junction plasma core bomb charge explosive explosives life-support "
        "auxiliary machinery mechanism"
    ),
    "piloting": _words(
        "ship shuttle cutter freighter fighter skiff rover helm throttle asteroid asteroids orbit "
        "atmosphere landing pad docking formation speeder dropship gunship vehicle controls"
    ),
    "athletics": _words("gap ledge cliff wall rope ladder shaft chasm girder rubble"),
    "stealth": _words("quietly silently shadows unseen sentries patrol guards undetected"),
    "sleight of hand": _words("pocket pockets belt sleeve wallet unnoticed drink"),
    "marksmanship": _words(
        "rifle pistol blaster gun guns turret cannon cannons sniper grenade rounds target scope bow railgun"
    ),
    "brawling": _words("fist fists jaw knife blade baton melee throat nose"),
    "persuasion": _words("please trust harm reason kindness honour honor mercy"),
    "deception": _words("lie false fake forged disguise cover story pretend"),
    "intimidation": _words("threat threats fear surrender afraid menacingly knuckles"),
    "negotiation": _words("price credits deal fee fees payment terms share cut bribe"),
    "investigation": _words("clues evidence tracks footprints marks trail traces records"),
    "perception": _words("movement footsteps sounds noise ambush lookout horizon watch"),
    "analysis": _words("sample readings data schematics diagram pattern residue glyphs"),
    "lore": _words("history legends legend myth rumours rumors stories origins ancient"),
    "navigation": _words("course route charts coordinates map stars jump way path"),
    "medicine": _words(
        "wound wounds wounded injured injury bleeding burns fever poison antidote medkit medpatch pulse "
        "vitals surgery broken unconscious dying sick"
    ),
}
