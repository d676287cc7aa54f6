# ruff: noqa: E501 - the lexicon: long alternations read best on one line
"""The local classifier's curated lexicon: per category, the phrases that flag it, the company a
phrase needs to keep (`near`) and the company that clears it (`unless`), plus the idioms that are
never what they look like. Pure data and regex building: no Django.

Pattern snippets are written lower-case and read as:
- a space is any run of non-letters, or none ("kill your self" also matches "killyourself",
  "kill-your-self");
- every plain letter may repeat ("kiiill");
- a match must start and end at a word boundary ("skill" never matches "kill").

Figurative and game language is the main source of false alarms in a space opera: "kill the
engines", "blast doors", "shoot the breeze", "that's the bomb", "a suicide run". Those idioms are
blanked out before any category is matched. Violence itself (a firefight with pirates) is
detected — it is the category a war story allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GAP = r"[^a-z0-9]*"


def tolerant(snippet: str) -> str:
    """A snippet as a regex: spaces → any gap, every plain letter may repeat."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(snippet):
        ch = snippet[i]
        nxt = snippet[i + 1] if i + 1 < len(snippet) else ""
        if ch == "\\":
            out.append(snippet[i : i + 2])
            i += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        if ch == " " and not in_class:
            out.append(_GAP)
        elif "a" <= ch <= "z" and not in_class and nxt not in ("?", "*", "+", "{"):
            out.append(ch + "+")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def compile_terms(snippets: tuple[str, ...]) -> re.Pattern[str]:
    body = "|".join(f"(?:{tolerant(s)})" for s in snippets)
    return re.compile(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


@dataclass(frozen=True)
class Rule:
    category: str
    terms: tuple[str, ...]
    near: tuple[str, ...] = ()  # also one of these, anywhere in the text
    unless: tuple[str, ...] = ()  # and none of these


# ---- idioms: blanked before matching ---------------------------------------------------------

IDIOMS: tuple[str, ...] = (
    r"kill(?:s|ed|ing)? (?:the |our |my |your |their |all |its |his |her |that |this |those |these )?(?:main |primary |aft |forward |running |cabin |deck |"
    r"outer |inner |emergency )?(?:engines?|lights?|power|thrusters?|motors?|comms?|music|lamps?|alarms?|signals?|feeds?|"
    r"transponders?|reactors?|drives?|beacons?|shields?|sensors?|radio|the noise|switch|process|program|app|screen)",
    r"kill(?:ing)? (?:some |a little |the )?time",
    r"killer (?:app|deal|view|instinct|smile|idea|move|outfit|playlist|tune|track)s?",
    r"dressed to kill",
    r"killing it",
    r"(?:take|takes|taking|took|have|give it) a (?:quick )?shot at (?:fixing|it|this|that|making|getting|repairing|finding)",
    r"blow(?:s|ing|n)? up at",
    r"blew up at",
    r"^\W*shoot\W*(?:[,!.]|$)",
    r"(?:oh )?shoot,",
    r"blow(?:s|ing)? off steam",
    r"crash(?:es|ed)? and burn(?:s|ed)?",
    r"execut(?:e|es|ed|ing) (?:the|a|an|our|my|this|that) (?:docking|plan|order|program|manoeuvre|maneuver|jump|burn|command|script|protocol|sequence|turn)",
    r"(?:is|are|was|were) killing me",
    r"kill me now",
    r"(?:could|would) kill for (?:a|an|some)",
    r"shoot(?:s|ing)? the breeze",
    r"shoot(?:s|ing)? (?:me |us |him |her |them |you )?(?:a |an )?(?:quick )?(?:message|text|line|glance|look|email|note|smile|grin|question)",
    r"shot (?:a |an )?(?:glance|look|smile|grin)",
    r"long shot",
    r"(?:big|hot)shots?",
    r"call(?:s|ed|ing)? the shots?",
    r"blast (?:doors?|shields?|off|radius|from the past|shutters?)",
    r"(?:having|had|have|has|what) a blast",
    r"(?:is|was|that's|thats|it's|its|be|are) (?:the |da )bomb",
    r"bombed (?:the |my |that |an? )?(?:exam|test|interview|audition|show|pitch)",
    r"(?:photo|bath|cherry|truth|stink) ?bombs?",
    r"suicide (?:mission|run|squad|dive|jump|pact of the machines|doors?|burn|charge)s?",
    r"(?:drop )?dead (?:tired|ringer|end|serious|silent|centre|center|on|last|weight|zone|reckoning|gorgeous|giveaway|heat)",
    r"dead ?lines?",
    r"(?:dying|dies) (?:to|for) (?:know|see|hear|try|meet|get|find)",
    r"die(?:d|s)? laughing",
    r"murder(?:ed|s)? (?:a |that |the )?(?:sandwich|burger|pint|song|karaoke|pizza|curry)",
    r"cut(?:s|ting)? (?:the |to the )?(?:power|chase|engines?|lights?|deal|corners?|comms?|losses|cord|thrusters?)",
    r"cutting edge",
    r"break a leg",
    r"bite the bullet",
    r"smoking gun",
    r"jump the gun",
    r"stick to (?:your|my|our) guns",
    r"fire(?:s|d)? up",
    r"fire(?:s|d)? (?:the |our |main |all )?(?:engines?|thrusters?|boosters?|retros?|retro rockets?|drive|burn)",
    r"(?:crossfire hurricane|ceasefire|cease fire|under fire from critics)",
    r"sex(?:ton|agesimal|tant|tet)s?",
    r"(?:essex|sussex|middlesex|wessex)",
    r"hang (?:on|out|up|tight|back|around|in there)",
    r"pipe (?:bomb )?down",
    r"knock(?:ed|s)? (?:on|at) (?:the )?door",
    r"(?:overkill|skill|killjoy|painkillers?)",
)

_IDIOMS = re.compile("|".join(f"(?:{s})" for s in IDIOMS))


def blank_idioms(text: str) -> str:
    """`text` with each idiom replaced by spaces of the same length (positions stay put)."""
    return _IDIOMS.sub(lambda m: " " * len(m.group(0)), text)


# ---- the categories ---------------------------------------------------------------------------

_SEXUAL = (
    r"(?:have|having|had|has) sex",
    r"sex (?:with|scene|act|slave|toy)s?",
    r"sexual(?:ly)?",
    r"sexy",
    r"(?:strips?|stripped|stripping) (?:naked|nude|off (?:her|his|their|my|your) (?:clothes|underwear|bra|panties))",
    r"naked",
    r"nude(?:s|ity)?",
    r"undress(?:es|ed|ing)? (?:her|him|them|you|me)",
    r"fuck(?:s|ed|ing)? (?:her|him|them|me|you)(?! up)(?! off)(?! over)",
    r"make love",
    r"making love",
    r"orgasm(?:s|ic)?",
    r"porn(?:o|ography|ographic)?",
    r"erotic(?:a)?",
    r"genitals?",
    r"penis(?:es)?",
    r"vagina(?:s|l)?",
    r"breasts?",
    r"boobs?",
    r"tits",
    r"nipples?",
    r"blow ?jobs?",
    r"hand ?jobs?",
    r"masturbat(?:e|es|ed|ing|ion)",
    r"grop(?:e|es|ed|ing)",
    r"horny",
    r"aroused",
    r"rap(?:e|es|ed|ing|ist)",
    r"molest(?:s|ed|ing|ation)?",
    r"sleep(?:s|ing)? with (?:her|him|them|me|you)(?! on)",
    r"lap ?dance",
    r"kink(?:y)?",
    r"tak(?:e|es|ing) off (?:her|his|their|my|your) (?:clothes|underwear|bra|panties|shirt and)",
    r"erections?",
    r"foreplay",
    r"intercourse",
    r"in bed (?:together|with (?:her|him|them))",
    r"sex",
)

_MINOR = (
    r"child(?:ren)?",
    r"kids?",
    r"minors?",
    r"under ?age(?:d)?",
    r"teen(?:ager|agers|s)?",
    r"pre ?teens?",
    r"(?:young|little) (?:girl|boy)s?",
    r"school ?(?:girl|boy)s?",
    r"loli(?:s|con)?",
    r"shota",
    r"toddlers?",
    r"(?:[1-9]|1[0-7]) ?(?:years?|yrs?|yo) ?(?:old)?",
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen) ?(?:years?|yrs?) ?old",
    r"(?:cabin|school|choir) ?(?:boy|girl)s?",
    r"cadets? (?:aged|age) (?:1[0-7]|[1-9])",
)

_GROUPS = (
    r"(?:jews|jewish people|muslims|christians|blacks|black people|whites|white people|asians|arabs|mexicans|"
    r"immigrants|refugees|gays|gay people|lesbians|trans people|transgender people|women|hindus|sikhs|"
    r"gypsies|roma|latinos|africans|chinese people|indians|catholics|homosexuals|queers|migrants)"
)

_SLURS = (
    r"nigg(?:er|ers|a|as|ah)",
    r"kikes?",
    r"spics?",
    r"chinks?",
    r"faggots?",
    r"fags?",
    r"trann(?:y|ies)",
    r"wetbacks?",
    r"ragheads?",
    r"towel ?heads?",
    r"gooks?",
    r"sand ?niggers?",
    r"untermensch",
)

_INSTRUCTION = (
    r"how (?:do|can|would|should) (?:i|we|you|one)",
    r"how to",
    r"teach (?:me|us)",
    r"instructions?",
    r"recipes?",
    r"ingredients?",
    r"step by step",
    r"formula",
    r"synthesi[sz](?:e|es|ed|ing)",
    r"in real life",
    r"irl",
    r"real world",
    r"tutorial",
    r"guide (?:to|for)",
    r"(?:what|which) (?:household |common )?(?:chemicals|ingredients|materials|parts) (?:make|makes|to mix|do i need|would i need)",
    r"explain how",
)

_AGENTS = (
    r"(?:pipe|nail|pressure cooker|fertili[sz]er|car|letter) bombs?",
    r"i ?e ?ds?",
    r"c ?4",
    r"semtex",
    r"tatp",
    r"ammonium nitrate",
    r"thermite",
    r"napalm",
    r"nerve (?:agents?|gas)",
    r"sarin",
    r"vx (?:gas|agent|nerve)",
    r"ricin",
    r"anthrax",
    r"mustard gas",
    r"chlorine gas",
    r"(?:bio|chemical|biological) ?weapons?",
    r"ghost guns?",
    r"untraceable (?:gun|firearm|rifle|pistol)s?",
    r"molotov(?: cocktails?)?",
    r"(?:home ?made|homemade|real|working) (?:bomb|explosive|gun|firearm|silencer|suppressor)s?",
    r"explosives?",
    r"bombs?",
    r"(?:toxic|poison|poisonous|deadly|lethal|nerve|chlorine) gas(?:es)?",
    r"bleach and ammonia",
    r"poison (?:someone|a person|my|his|her)",
)

_SCIFI = (
    r"plasma",
    r"fusion",
    r"antimatter",
    r"photon",
    r"ion",
    r"reactor",
    r"fuel cells?",
    r"warp",
    r"hyper ?drive",
    r"star ?ship",
    r"torpedo(?:es)?",
    r"blasters?",
    r"phasers?",
    r"drones?",
    r"airlock",
    r"hull",
    r"nanites?",
    r"xeno\w*",
    r"hive",
    r"spore ?pods?",
)

RULES: tuple[Rule, ...] = (
    Rule(
        "violence",
        (
            r"kill(?:s|ed|ing|er|ers)?",
            r"murder(?:s|ed|ing|er|ers|ous)?",
            r"shoot(?:s|ing)?",
            r"shot (?:him|her|them|it|the|at|down|dead)",
            r"(?:fire|fires|fired|firing) (?:my |the |a |her |his |our |their |a few |two |three )?(?:[a-z\-]+ ){0,3}(?:at|upon|into)",
            r"open(?:s|ed)? fire",
            r"gun(?:s|ned)? (?:him |her |them |it |the [a-z]+ )?down",
            r"stab(?:s|bed|bing)?",
            r"slash(?:es|ed|ing)? (?:at|him|her|them|its|his|their|the)",
            r"strangl(?:e|es|ed|ing)",
            r"chok(?:e|es|ed|ing) (?:him|her|them|the)",
            r"punch(?:es|ed|ing)?",
            r"kick(?:s|ed|ing)? (?:him|her|them|the [a-z]+ in)",
            r"attack(?:s|ed|ing)?",
            r"assault(?:s|ed|ing)?",
            r"behead(?:s|ed|ing)?",
            r"execut(?:e|es|ed|ing) (?:him|her|them|the prisoners?|the captives?|the hostages?)",
            r"slaughter(?:s|ed|ing)?",
            r"massacre(?:s|d)?",
            r"vapori[sz](?:e|es|ed|ing)",
            r"disintegrat(?:e|es|ed|ing)",
            r"blast(?:s|ed|ing)? (?:him|her|them|it|at|the [a-z]+ (?:apart|away|to)|away at)",
            r"blow(?:s|ing)? (?:him|her|them|it|the [a-z]+) (?:up|away|apart)",
            r"blow(?:s|ing)? up",
            r"blew up",
            r"grenades?",
            r"ambush(?:es|ed|ing)?",
            r"snip(?:e|es|ed|ing|er|ers)",
            r"head ?shots?",
            r"threaten(?:s|ed|ing)? to (?:kill|hurt|shoot)",
            r"beat(?:s|ing)? (?:him|her|them) (?:up|senseless|to death)",
            r"torture(?:s|d)?",
            r"slit (?:his|her|their|its) throat",
            r"(?:bleeds?|bleeding) out",
            r"firefight",
            r"gunfight",
            r"knife (?:him|her|them|it)",
            r"hit (?:him|her|them) (?:hard|with)",
            r"tackl(?:e|es|ed|ing) (?:him|her|them|the)",
            r"knif(?:e|es|ed|ing) (?:him|her|them|the [a-z]+)",
            r"cut(?:s|ting)? (?:him|her|them|the [a-z]+ )?down",
            r"(?:rounds|bullets|shots|bolts|slugs) into",
            r"shred(?:s|ded|ding)? (?:him|her|them|the)",
            r"(?:tear|tears|tore|torn|rip|rips|ripped) (?:[a-z']+ ){0,3}apart",
            r"torch(?:es|ed|ing)? (?:him|her|them|the)",
            r"smash(?:es|ed|ing)? (?:him|her|them|it|the [a-z]+) (?:against|into|with)",
            r"storm(?:s|ed|ing)? the (?:bridge|base|compound|outpost|ship|station|bunker|gate|palace|camp)",
            r"slay(?:s|ing)?",
            r"slain",
            r"skewer(?:s|ed|ing)?",
            r"impal(?:e|es|ed|ing)",
            r"pummel(?:s|ed|led|ing)?",
            r"bludgeon(?:s|ed|ing)?",
            r"maim(?:s|ed|ing)?",
            r"wound(?:s|ed|ing)? (?:him|her|them|the)",
            r"stab(?:s|bed|bing)? (?:him|her|them|the)",
            r"strik(?:e|es|ing) (?:him|her|them) down",
            r"struck (?:him|her|them) down",
            r"burn(?:s|ed|ing)? (?:him|her|them) alive",
            r"gun(?:s)? (?:tear|tears|rip|rips|shred|shreds)",
            r"fight(?:s|ing)? (?:off )?(?:the|him|her|them)",
            r"raid(?:s|ed|ing)? the",
        ),
        # "kill myself" is self-harm, "kill yourself" harassment: not a fight.
        unless=(r"kill(?:ing)? (?:my|your) ?self", r"kys"),
    ),
    Rule(
        "graphic_violence",
        (
            r"disembowel(?:s|ed|ing|led|ling)?",
            r"entrails",
            r"intestines",
            r"guts (?:spill|spilling|spilled|out|everywhere|hanging)",
            r"flay(?:s|ed|ing)?",
            r"skin(?:s|ned)? (?:him|her|them|it) alive",
            r"goug(?:e|es|ed|ing) (?:out )?(?:his|her|their|its) eyes?",
            r"eyes? (?:gouged|torn) out",
            r"decapitat(?:e|es|ed|ing|ion)",
            r"dismember(?:s|ed|ing|ment)?",
            r"mutilat(?:e|es|ed|ing|ion)",
            r"eviscerat(?:e|es|ed|ing|ion)",
            r"rip(?:s|ped|ping)? (?:out )?(?:his|her|their|its) (?:throat|heart|spine|tongue|eyes)(?: out)?",
            r"brains? (?:splatter|splattered|spray|sprayed|leak|leaking|everywhere)",
            r"blood (?:sprays|sprayed|gushes|gushed|fountains|spurts|spurted)",
            r"gore",
            r"gory",
            r"severed (?:head|heads|limbs?|arms?|legs?|fingers?)",
            r"skull (?:cracks|cracked|caved|shatters|splits)",
            r"bones? (?:snap|snapped|crunch|crunched) (?:through|out)",
            r"pull(?:s|ed)? out (?:his|her|their) (?:fingernails|teeth|nails)",
            r"torture(?:s|d)? (?:him|her|them) (?:slowly|for hours|with)",
            r"guts (?:hang|hanging|spill|spilling|spilled)",
            r"innards",
            r"viscera",
            r"blood and guts",
            r"peel(?:s|ed|ing)? (?:the|his|her|their) (?:skin|face|flesh)",
            r"skin (?:from|off) (?:his|her|their|its) (?:face|body|arm|back|bones)",
            r"flesh (?:melts|melted|sloughs|sloughed|bubbles|tears|peels|burns)",
            r"bones? (?:juts|jutting|sticks|sticking) out",
            r"(?:arm|arms|leg|legs|head|limbs?) (?:torn|ripped|hacked|sawn|chopped) off",
            r"(?:tear|tears|tore|rip|rips|ripped|hack|hacks|hacked|chop|chops|chopped) (?:his|her|their|its) (?:arm|leg|head|limbs?|fingers?) off",
            r"burn(?:s|ed|ing)? alive",
            r"melts? (?:his|her|their) face",
        ),
    ),
    Rule(
        "sexual",
        _SEXUAL,
        unless=(r"sex (?:of|determination|ratio|chromosome)s?", r"(?:same|opposite|either|both) sex(?:es)?"),
    ),
    Rule("minors", _SEXUAL, near=_MINOR),
    Rule(
        "minors",
        (r"child porn(?:ography)?", r"csam", r"pedo(?:phile|philia|s)?", r"paedo(?:phile|philia|s)?"),
    ),
    Rule(
        "self_harm",
        (
            r"kill(?:ing)? my ?self",
            r"kms",
            r"end(?:ing)? (?:it all|my (?:own )?life)",
            r"tak(?:e|ing) my (?:own )?life",
            r"suicid(?:e|al)",
            r"(?:i|i really|i just) (?:want|wanna|wish) (?:to|i could|i was|i were) (?:die|dead|disappear forever)",
            r"cut(?:ting)? my ?self",
            r"self ?harm(?:ing)?",
            r"slit(?:ting)? my wrists?",
            r"hang(?:ing)? my ?self",
            r"overdos(?:e|ing) on (?:my |the )?(?:pills|sleeping pills|painkillers|meds|medication|tylenol|paracetamol)",
            r"no reason to live",
            r"better off dead",
            r"(?:don't|dont|do not) want to (?:live|be alive|wake up)",
            r"(?:hurt|hurting|harm|harming|burn|burning|starve|starving) my ?self",
            r"(?:planning|plan|thinking about|ways?) (?:how )?to end (?:it|my life|things)",
            r"(?:can't|cant|cannot) (?:go on|keep going) (?:anymore|any more|like this)",
            r"nobody (?:would|will) miss me",
            r"(?:i|i really) (?:want|wanna) (?:to )?(?:disappear|stop existing|not exist)",
            r"pills to end",
        ),
    ),
    Rule(
        "hate",
        (
            *_SLURS,
            rf"{_GROUPS} (?:should|must|need to|deserve to|ought to|have to) (?:all )?(?:die|be killed|be exterminated|be gassed|burn|be wiped out|be shot|be deported)",
            rf"{_GROUPS} (?:are|r) (?:all )?(?:vermin|animals|subhuman|sub human|parasites|rats|cockroaches|a disease|a plague|inferior|filth|scum)",
            rf"(?:gas|exterminate|kill|wipe out|deport) (?:all )?(?:the |those )?{_GROUPS}",
            rf"death to (?:all )?(?:the )?{_GROUPS}",
            rf"{_GROUPS} (?:are|r) (?:all )?(?:thieves|criminals|terrorists|rapists|savages|dirty|filthy|evil|a cancer|diseased|inbred)",
            rf"{_GROUPS} (?:should|must|need to|ought to) (?:all )?be (?:driven out|removed|banned|locked up|sterili[sz]ed|enslaved|sent back)",
            r"heil hitler",
            r"white power",
            r"14 ?88",
            r"race war now",
        ),
    ),
    Rule(
        "harassment",
        (
            r"kill your ?self",
            r"kys",
            r"go (?:and )?die",
            r"(?:you|u|ur|you're|youre|you are) (?:a |an |such a |so |fucking |stupid |worthless |pathetic |useless )*"
            r"(?:bitch|whore|slut|cunt|piece of shit|waste of space|retard|retarded|dumb ?ass)",
            r"(?:stupid|worthless|fucking|dumb) (?:bitch|whore|slut|cunt|retard)",
            r"i know where you live",
            r"i (?:will|'ll|ll|am going to|'m going to|m gonna|'m gonna) (?:find|come to|show up at) (?:you|where you live|your (?:house|home|work))",
            r"(?:i|we) (?:will|'ll|ll|am going to|'m going to) rape you",
            r"nobody (?:likes|wants|loves) you",
            r"retard(?:s|ed)?",
            r"(?:shut (?:the fuck )?up|fuck off),? (?:you )?(?:bitch|whore|cunt|retard)",
        ),
    ),
    Rule(
        "illicit",
        (
            r"(?:cook|cooking|make|making|synthesi[sz]e|brew|manufacture|produce|extract)(?:s|ed)? (?:some |my own |a batch of )?"
            r"(?:meth|crystal meth|methamphetamine|fentanyl|heroin|cocaine|crack|lsd|mdma|ecstasy|dmt|ghb)",
            r"(?:buy|sell|score|order|deal)(?:s|ing)? (?:some |a gram of |an ounce of )?(?:cocaine|coke|heroin|meth|fentanyl|crack|molly|mdma|lsd)"
            r"(?: online| on the dark ?web| near me| in real life)?",
            r"launder(?:s|ed|ing)? (?:the )?money",
            r"money laundering",
            r"(?:steal|stealing|stolen|clone|cloned|cloning) credit cards?",
            r"credit card (?:fraud|skimm(?:ing|er|ers))",
            r"identity theft",
            r"phishing (?:email|site|kit|page)s?",
            r"dark ?web (?:market|vendor)s?",
        ),
    ),
    Rule(
        "illicit",
        (
            r"skim(?:s|ming|med)? (?:credit |debit |bank )?cards?",
            r"card skimmers?",
            r"shoplift(?:ing)?",
            r"hotwir(?:e|ing) (?:a|my|his|her) car",
            r"pick(?:ing)? a (?:real )?lock",
            r"break(?:ing)? into (?:a|my|his|her|someone's|the neighbou?r's) (?:house|home|car|apartment)",
            r"hack(?:ing)? (?:into )?(?:my|his|her|their|someone's) (?:ex's |ex |neighbou?r's |boss's )?(?:account|email|phone|instagram|facebook|wifi)",
        ),
        near=_INSTRUCTION,
    ),
    Rule("weapons", _AGENTS, near=_INSTRUCTION, unless=_SCIFI),
    Rule(
        "weapons",
        (
            r"(?:make|build|assemble|mix|cook|print|3d print|manufacture)(?:s|ing)? (?:a |an |some |my own |your own )?"
            r"(?:(?:pipe|nail|pressure cooker|fertili[sz]er) bomb|nerve agent|sarin|ricin|anthrax|mustard gas|chlorine gas|ghost gun|napalm|thermite|tatp|semtex)s?",
        ),
        unless=_SCIFI,
    ),
    Rule(
        "privacy",
        (
            r"dox(?:x)?(?:es|ed|ing)?",
            r"(?:home|real|street|house) address (?:of|for)",
            r"where (?:does )?(?:he|she|they|[a-z]+) (?:really )?lives? in real life",
            r"(?:real|full|legal) name and (?:home )?(?:address|phone|number)",
            r"social security numbers?",
            r"ssn",
            r"leak(?:s|ed|ing)? (?:his|her|their) (?:home )?(?:address|phone number|number|photos|nudes|real name)",
            r"passwords? (?:of|for) (?:his|her|their|my ex's)",
        ),
    ),
)


@dataclass(frozen=True)
class Compiled:
    category: str
    terms: re.Pattern[str]
    near: re.Pattern[str] | None
    unless: re.Pattern[str] | None


def compile_rules(rules: tuple[Rule, ...] = RULES) -> tuple[Compiled, ...]:
    return tuple(
        Compiled(
            r.category,
            compile_terms(r.terms),
            compile_terms(r.near) if r.near else None,
            compile_terms(r.unless) if r.unless else None,
        )
        for r in rules
    )


_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "no",
        "not",
        "any",
        "all",
        "my",
        "our",
        "your",
        "their",
        "his",
        "her",
        "its",
        "is",
        "are",
        "be",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "off",
        "out",
        "up",
        "down",
        "this",
        "that",
        "these",
        "those",
        "some",
        "who",
        "what",
        "when",
        "where",
        "how",
    ]
)


def phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    """A table's line or veil ("spiders", "harm to animals") as a pattern: every content word's
    stem present, in any order, as the start of a word ("spider", "spiders", "animals harmed")."""
    words = [w for w in re.findall(r"[a-z0-9]+", phrase) if w not in _STOP and len(w) >= 3]
    if not words:
        return None
    stems = []
    for word in words[:6]:
        stem = word
        for suffix in ("ing", "ies", "es", "ed", "s"):
            if len(stem) > len(suffix) + 2 and stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        stems.append(stem)
    body = "".join(rf"(?=.*(?<![a-z0-9]){re.escape(s)}[a-z]{{0,5}}(?![a-z0-9]))" for s in stems)
    return re.compile(body, re.DOTALL)
