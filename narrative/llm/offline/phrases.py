"""Phrase tables for the offline narrator.

Templates use `str.format` fields filled by `narrative.llm.offline`. Grammar rules the
tables follow so any filling reads correctly:
- {target}, {sight}, {sight2} and {air} may be plural: never make them the subject of a
  present-tense verb. {sound} is always a singular noun phrase.
- {task} is an infinitive phrase ("hack the airlock panel"); templates needing it are
  skipped when the action could not be phrased that way. The same holds for {npc},
  {faction}, {objective} and {desc}.
"""

from __future__ import annotations

OUTCOMES = ("critical_success", "success", "failure", "critical_failure")

# Biome kind -> keywords that select it (first match over the scene's biome/name wins).
BIOME_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ruins", ("ruin", "temple", "ancient", "tomb", "precursor", "relic")),
    ("station", ("station", "derelict", "orbital", "habitat", "dock", "ring", "outpost", "lab")),
    ("ship", ("ship", "vessel", "freighter", "cruiser", "hull", "bridge", "corvette", "hangar")),
    ("jungle", ("jungle", "forest", "swamp", "marsh", "overgrown", "fungal", "garden")),
    ("desert", ("desert", "dune", "wasteland", "badland", "salt", "canyon", "mesa")),
    ("ice", ("ice", "frozen", "tundra", "glacier", "snow", "cryo", "arctic")),
    ("city", ("city", "market", "bazaar", "district", "undercity", "spire", "slum", "arcology", "street")),
    ("mine", ("asteroid", "mine", "quarry", "cavern", "cave", "tunnel", "shaft")),
    ("ocean", ("ocean", "sea", "reef", "underwater", "tidal", "flooded", "harbor", "harbour")),
)

AMBIENCE: dict[str, dict[str, tuple[str, ...]]] = {
    "station": {
        "sound": (
            "the slow groan of stressed bulkheads",
            "the tick of cooling metal",
            "a recycler coughing somewhere behind the walls",
            "the hiss of a failing pressure seal",
        ),
        "sight": (
            "emergency strips pulsing a tired red",
            "frost creeping along dead viewports",
            "cables hanging like vines from an open ceiling panel",
            "a stencilled deck number half scoured away",
        ),
        "air": (
            "stale, recycled air that tastes of ozone",
            "a cold that gets in under the collar",
            "the smell of burnt insulation",
            "air thin enough to notice",
        ),
    },
    "ship": {
        "sound": (
            "the low thrum of the drive through the deck plates",
            "the chirp of a distant console",
            "the clank of a hatch cycling two decks down",
            "the rattle of loose panels under thrust",
        ),
        "sight": (
            "running lights washing the corridor in amber",
            "handholds polished by years of use",
            "a cracked status display stuttering through its diagnostics",
            "a porthole full of slow-turning stars",
        ),
        "air": (
            "air that smells of coolant and old coffee",
            "the faint warmth of the reactor through the floor",
            "a dry chill from the overworked scrubbers",
            "recycled air with a metallic edge",
        ),
    },
    "jungle": {
        "sound": (
            "the drip of water from leaves the size of hull plates",
            "a chorus of unseen things clicking in the canopy",
            "the crash of something large moving through the undergrowth",
            "the drone of insects, thick as static",
        ),
        "sight": (
            "bioluminescent fungus pulsing along the roots",
            "vines strangling the carcass of an old survey drone",
            "light falling green and broken through the canopy",
            "spores drifting like slow snow",
        ),
        "air": (
            "heavy, wet air that clings to the skin",
            "the sweet rot of fallen fruit",
            "heat that presses down like a hand",
            "the tang of sap and mould",
        ),
    },
    "desert": {
        "sound": (
            "the hiss of wind over the dune crests",
            "the tick of sand against a visor",
            "the distant boom of settling rock",
            "a dry, endless silence",
        ),
        "sight": (
            "twin shadows stretched long across the sand",
            "the bleached ribs of a crashed hauler",
            "heat shimmer bending the horizon",
            "salt flats glittering like broken glass",
        ),
        "air": (
            "air hot enough to sting the lungs",
            "grit in every seam",
            "the mineral smell of sun-baked stone",
            "a wind that steals the moisture from the lips",
        ),
    },
    "ice": {
        "sound": (
            "the deep groan of shifting ice",
            "the keen of wind through frozen struts",
            "the crunch of boots on hard snow",
            "a crack like a gunshot somewhere under the surface",
        ),
        "sight": (
            "blue light glowing up through the ice",
            "breath fogging in the glare of a helmet lamp",
            "icicles hanging from every ledge like teeth",
            "a sky the colour of old steel",
        ),
        "air": (
            "cold that numbs fingers through insulated gloves",
            "air so dry it crackles",
            "the clean, biting smell of frost",
            "a chill that seeps into the bones",
        ),
    },
    "city": {
        "sound": (
            "the roar of traffic on the skylanes above",
            "a hawker shouting prices in three languages",
            "the thump of music from somewhere below street level",
            "a siren wailing and fading between the towers",
        ),
        "sight": (
            "neon bleeding across wet pavement",
            "holo-ads flickering over crowds that ignore them",
            "drones threading between the balconies",
            "graffiti tags layered a decade deep",
        ),
        "air": (
            "the smell of fried noodles and hot circuitry",
            "humid air thick with exhaust",
            "rain that tastes faintly of rust",
            "the press of too many bodies",
        ),
    },
    "mine": {
        "sound": (
            "the distant thud of mining charges",
            "the trickle of gravel down a shaft",
            "the whine of an ore crawler",
            "the creak of shoring beams taking the strain",
        ),
        "sight": (
            "dust hanging in the beams of work lamps",
            "veins of ore glinting in the rock",
            "rusted rails vanishing into the dark",
            "warning glyphs painted in fading yellow",
        ),
        "air": (
            "dust that coats the tongue",
            "the mineral smell of freshly cut rock",
            "stale air pumped from too far away",
            "heat rising from the deep shafts",
        ),
    },
    "ocean": {
        "sound": (
            "the slap of waves against the pylons",
            "the groan of pressure on the hull",
            "a sonar ping echoing from far away",
            "the gurgle of water in the bilge lines",
        ),
        "sight": (
            "shafts of light fading into blue-black depths",
            "silver things scattering from the lamps",
            "kelp swaying in a slow current",
            "condensation beading on every surface",
        ),
        "air": (
            "salt heavy in the air",
            "a damp that never quite dries",
            "the iodine smell of the deep",
            "a cold, briny breeze",
        ),
    },
    "ruins": {
        "sound": (
            "the whisper of dust sliding off ancient stone",
            "a low harmonic hum from inside the walls",
            "an echo that returns a moment too late",
            "the silence of a place built by no human hand",
        ),
        "sight": (
            "alien glyphs that seem to shift at the edge of vision",
            "columns of black glass rising into darkness",
            "murals of creatures no survey ever catalogued",
            "faint light pulsing through cracks in the floor",
        ),
        "air": (
            "dry air that hasn't moved in millennia",
            "the faint smell of ozone and old stone",
            "a chill that has nothing to do with temperature",
            "a pressure behind the eyes",
        ),
    },
    "void": {
        "sound": (
            "the hum of life support doing its quiet work",
            "the crackle of a distant comm channel",
            "the tick of a chronometer counting down to something",
            "a silence deep enough to hear a heartbeat",
        ),
        "sight": (
            "starlight glittering on scarred metal",
            "a distant nebula smeared across the dark",
            "warning lights blinking in patient rhythm",
            "shadows sharp as knives in the hard light",
        ),
        "air": (
            "cold, filtered air",
            "the faint smell of ozone",
            "the weight of vacuum pressing in from every side",
            "a stillness that feels like waiting",
        ),
    },
}

# Words that mark an action as needing a check: (category, attribute, skill, words).
# "weak" words are ambiguous ("run a diagnostic", "hold on") and only count when nothing else matches.
CHECK_WORDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "tech",
        "tech",
        "hacking",
        (
            "hack",
            "slice",
            "bypass",
            "decrypt",
            "override",
            "crack",
            "spoof",
            "jam",
            "sabotage",
            "disarm",
            "reprogram",
            "jack",
        ),
    ),
    (
        "repair",
        "tech",
        "engineering",
        (
            "repair",
            "patch",
            "reroute",
            "fix",
            "weld",
            "rewire",
            "splice",
            "recalibrate",
            "calibrate",
            "restore",
            "jury-rig",
        ),
    ),
    ("pilot", "agility", "piloting", ("pilot", "steer", "fly", "manoeuvre", "maneuver")),
    (
        "athletics",
        "agility",
        "athletics",
        (
            "climb",
            "jump",
            "leap",
            "vault",
            "sprint",
            "swim",
            "swing",
            "balance",
            "scale",
            "dash",
            "flee",
            "dodge",
            "evade",
            "duck",
        ),
    ),
    ("stealth", "agility", "stealth", ("sneak", "hide", "creep", "tiptoe", "slip", "tail")),
    ("stealth", "agility", "sleight of hand", ("pickpocket", "steal", "palm", "swipe")),
    ("combat", "agility", "marksmanship", ("shoot", "aim", "snipe", "throw")),
    (
        "might",
        "might",
        "brawling",
        ("punch", "kick", "tackle", "wrestle", "grapple", "headbutt", "attack", "strike", "stab", "slash"),
    ),
    (
        "might",
        "might",
        "athletics",
        (
            "lift",
            "force",
            "break",
            "smash",
            "shove",
            "pry",
            "drag",
            "bash",
            "bend",
            "wrench",
            "haul",
            "ram",
            "heave",
            "carry",
        ),
    ),
    (
        "social",
        "presence",
        "persuasion",
        ("persuade", "convince", "charm", "calm", "inspire", "rally", "flirt", "plead", "reassure"),
    ),
    (
        "social",
        "presence",
        "deception",
        ("bluff", "lie", "deceive", "con", "distract", "impersonate", "trick"),
    ),
    ("social", "presence", "intimidation", ("intimidate", "threaten", "menace", "interrogate")),
    ("social", "presence", "negotiation", ("negotiate", "haggle", "bargain", "bribe", "barter")),
    ("wits", "wits", "investigation", ("search", "investigate", "inspect", "track", "deduce", "study")),
    (
        "wits",
        "wits",
        "analysis",
        ("analyse", "analyze", "scan", "decipher", "diagnose", "identify", "translate"),
    ),
    (
        "wits",
        "wits",
        "lore",
        (
            "recall",
            "remember",
        ),
    ),
    ("wits", "wits", "navigation", ("navigate", "plot")),
    ("wits", "wits", "medicine", ("heal", "treat", "stabilise", "stabilize", "bandage")),
)
WEAK_CHECK_WORDS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("athletics", "agility", "athletics", ("run",)),
    ("combat", "agility", "marksmanship", ("fire",)),
    ("might", "might", "athletics", ("push", "pull", "hold")),
)

LOOT_WORDS = ("loot", "scavenge", "salvage", "rummage", "pillage", "supplies", "pockets", "stash")
TALK_WORDS = (
    "say",
    "ask",
    "tell",
    "greet",
    "talk",
    "chat",
    "speak",
    "whisper",
    "shout",
    "call",
    "reply",
    "answer",
    "wave",
    "nod",
    "introduce",
    "thank",
    "hello",
    "hi",
    "hey",
    "joke",
    "laugh",
)
LOOK_WORDS = (
    "look",
    "glance",
    "observe",
    "watch",
    "listen",
    "examine",
    "peer",
    "survey",
    "check",
    "read",
    "smell",
    "wonder",
    "think",
    "consider",
)
MOVE_WORDS = (
    "go",
    "walk",
    "head",
    "enter",
    "leave",
    "move",
    "follow",
    "return",
    "advance",
    "proceed",
    "cross",
    "approach",
    "descend",
    "ascend",
    "board",
    "explore",
    "wander",
    "travel",
)
REST_WORDS = ("rest", "wait", "sleep", "sit", "eat", "drink", "meditate", "camp", "recover", "breathe")
# Verbs that may open a {task} phrase even though they never trigger a check.
OTHER_VERBS = (
    "open",
    "close",
    "take",
    "grab",
    "draw",
    "use",
    "activate",
    "press",
    "pick",
    "turn",
    "give",
    "offer",
    "show",
    "signal",
    "order",
    "reach",
    "kneel",
    "crouch",
    "stand",
    "step",
    "drop",
    "load",
    "holster",
    "equip",
    "power",
    "shut",
    "seal",
    "unlock",
    "light",
    "toss",
    "try",
    "help",
    "cover",
    "guard",
    "protect",
    "send",
    "bring",
    "put",
    "place",
    "hand",
    "pour",
)

# Difficulty words nudge the DC; a bare 12 is an ordinary, tense task.
BASE_DC = 12
DC_NUDGES: tuple[tuple[str, int], ...] = (
    ("impossib", 6),
    ("desperate", 3),
    ("blind", 3),
    ("under fire", 3),
    ("quickly", 2),
    ("hastily", 2),
    ("hurried", 2),
    ("in the dark", 2),
    ("without being seen", 2),
    ("one-handed", 2),
    ("in one", 2),
    ("military", 2),
    ("encrypted", 2),
    ("reinforced", 2),
    ("massive", 2),
    ("heavy", 1),
    ("silently", 1),
    ("before", 1),
    ("while", 1),
    ("carefully", -2),
    ("take my time", -2),
    ("slowly", -1),
    ("easily", -2),
    ("simple", -2),
    ("basic", -1),
    ("old", -1),
    ("rusty", -1),
    ("gently", -1),
)
SCENE_NUDGES = ("derelict", "storm", "zero-g", "radiation", "ruin", "ice", "dark", "burning", "flooded")
ADVANTAGE_WORDS = ("with help", "help me", "helps me", "together", "aided", "with the help", "backup")
DISADVANTAGE_WORDS = ("blindfold", "injured", "wounded", "one-handed", "under fire", "drunk", "bleeding")

FALLBACK_TARGET = {
    "repair": "the damaged system",
    "pilot": "the ship",
    "tech": "the system",
    "athletics": "the obstacle",
    "stealth": "the watchers",
    "combat": "the target",
    "might": "the obstruction",
    "social": "the other side",
    "wits": "the problem",
}

ORG_WORDS = (
    "syndicate",
    "consortium",
    "collective",
    "guild",
    "order",
    "union",
    "fleet",
    "corporation",
    "company",
    "cartel",
    "league",
    "authority",
    "directorate",
    "alliance",
    "federation",
    "compact",
    "church",
    "cult",
    "brotherhood",
    "sisterhood",
    "navy",
    "corps",
    "front",
    "clans",
    "council",
    "accord",
    "dominion",
    "empire",
    "republic",
    "hegemony",
    "combine",
    "coalition",
    "conclave",
    "remnant",
    "legion",
    "network",
    "circle",
    "institute",
    "cabal",
    "concern",
    "trust",
    "bureau",
)
TITLES = (
    "captain",
    "commander",
    "doctor",
    "dr",
    "dr.",
    "sergeant",
    "lieutenant",
    "agent",
    "professor",
    "admiral",
    "major",
    "colonel",
    "mister",
    "mr",
    "mr.",
    "ms",
    "ms.",
    "mrs",
    "mrs.",
    "sister",
    "brother",
    "father",
    "mother",
    "lady",
    "lord",
    "chief",
    "officer",
)

LEAD_INS: dict[str, tuple[str, ...]] = {
    "repair": (
        "{name} pulls out a multitool and goes to work on {target}.",
        "{first} traces the wiring back to its source, muttering, and starts pulling connectors.",
        "Sleeves up, {first} opens the housing and reaches into the guts of {target}.",
    ),
    "pilot": (
        "{name} takes the controls, hands light on the yoke.",
        "{first} brings the thrusters up and lines up the approach.",
        "Alarms chirp; {first} ignores them and flies.",
    ),
    "tech": (
        "{name} crouches beside {target}, fingers already moving across the interface.",
        "{first} jacks into {target}, and the world narrows to scrolling code.",
        "With a practised flick, {first} pops the cover off {target} and goes to work.",
        "{first} studies {target} for a long moment, then starts to work.",
    ),
    "athletics": (
        "{name} sizes up the distance, rolls their shoulders, and moves.",
        "{first} takes a breath and commits, every muscle coiled.",
        "There is no time to second-guess it; {first} goes for it.",
    ),
    "stealth": (
        "{name} lets their breathing slow and slips into the shadows.",
        "{first} waits for the right moment, then moves, low and silent.",
        "Keeping to the edges of the light, {first} starts forward.",
    ),
    "combat": (
        "{name} raises their weapon, steadies, and draws a bead on {target}.",
        "{first} exhales slowly and lines up the shot.",
        "Everything narrows to the sights and {target}.",
    ),
    "might": (
        "{name} braces, sets their feet, and puts their whole weight into it.",
        "{first} gets a grip on {target} and heaves.",
        "Jaw set, {first} throws everything into one enormous effort.",
    ),
    "social": (
        "{name} steps forward, choosing every word with care.",
        "{first} meets {listener_pos} eyes and starts talking.",
        "{first} puts on their most convincing face and makes the pitch.",
    ),
    "wits": (
        "{name} slows down, letting the details come.",
        "{first} starts working through it methodically, piece by piece.",
        "Eyes narrowed, {first} begins to sift through what is there.",
    ),
    "loot": (
        "{name} starts picking through whatever has been left behind.",
        "{first} kneels and begins to rummage, one eye on the shadows.",
        "Anything useful is worth the risk; {first} starts searching.",
    ),
}

TENSION: dict[str, tuple[str, ...]] = {
    "grim": (
        "Out here, there are no second chances.",
        "It all comes down to this.",
        "The silence stretches, taut as wire.",
    ),
    "wry": (
        "What could possibly go wrong?",
        "Confidence: moderate. Backup plan: none.",
        "This is the part where it either works or becomes a cautionary tale.",
    ),
    "heroic": (
        "Everything rides on this moment.",
        "Now or never.",
        "Fortune favours the bold, and {first} is nothing if not bold.",
    ),
    "whimsical": (
        "The dice of fate rattle somewhere in the cosmos.",
        "Somewhere, a probability engine leans in to watch.",
        "Fingers crossed. Toes too.",
    ),
}

CORE: dict[str, tuple[str, ...]] = {
    "critical_success": (
        "{name} doesn't just {task}; {first} does it so cleanly it looks rehearsed.",
        "Everything lines up at once, and {name} moves like someone who has done this a thousand times.",
        "{target} never stood a chance.",
        "Later, no one in {place} will quite agree on how {name} pulled it off, only that it was flawless.",
        "Instinct, training and sheer nerve fuse into a single flawless motion.",
        "{name} finds the one path through that nobody else would have seen, and takes it in stride.",
        "The attempt to {task} goes better than {first} dared hope, better than anyone could expect.",
        "Time seems to slow, and in that stretched second {name} gets every detail exactly right.",
        "What should have been a gamble becomes a demonstration.",
        "{name} makes it look effortless, and for once it almost is.",
        "The odds fold like a bad hand, and {name} collects.",
        "Every {arch} dreams of a moment like this; {name} gets one.",
        "There is a bright certainty to it: {first} was always going to {task}, and now everyone knows it.",
        "Even {first} seems a little surprised at how perfectly it comes together.",
        "It happens fast and it happens perfectly, the way {first} has rehearsed it a hundred times.",
        "Skill meets luck head-on, and {name} walks away with both.",
    ),
    "success": (
        "{name} sets out to {task}, and after a tense few seconds, it holds.",
        "It takes focus, but {name} gets it done.",
        "{first} works the problem steadily until it finally gives.",
        "Sweat, patience and a little luck: {name} manages to {task}.",
        "The first attempt stalls; the second one lands, and {first} lets out a breath.",
        "{name} makes it happen, not elegantly perhaps, but it happens.",
        "Slowly, then all at once, the situation tips in {first}'s favour.",
        "{first} keeps a steady hand, and the effort pays off.",
        "It is not pretty, but {name} manages to {task}, and that is what counts.",
        "Training wins out over nerves, and {name} comes through.",
        "{name} reads the moment correctly and commits; it pays off.",
        "There is a heartbeat where it could go either way, and then it goes {first}'s way.",
        "{first} adjusts, tries again, and this time everything clicks.",
        "The {arch} in {first} knows exactly what to do, and does it.",
        "Whatever doubts {first} had, the result silences them.",
        "Careful hands and a clear head carry {name} through.",
        "{name} pulls it off with a grin that is only partly relief.",
    ),
    "failure": (
        "{name} tries to {task}, but it refuses to come together.",
        "It doesn't work; {first} feels the moment slip away a fraction too early.",
        "{first} gets close, close enough to taste it, and then it falls apart.",
        "For all {first}'s effort, nothing gives.",
        "Something is off from the first second, and {name} cannot find it in time.",
        "The attempt to {task} stalls, and precious seconds bleed away.",
        "{name} commits, and the situation simply refuses to cooperate.",
        "Not this time: {first} pulls back before the mistake can get any worse.",
        "It was a reasonable plan; reality had other ideas.",
        "{first} misjudges it by a hair, and a hair is enough.",
        "Effort alone doesn't cut it, and {name} comes up short.",
        "{name} has to admit defeat, at least for this round.",
        "Whatever {first} was counting on, it isn't there.",
        "The {arch} in {first} knows better, but the moment moves too fast.",
        "There is a sick lurch of realisation as {name} sees it going wrong.",
        "{first} tries to {task} and gets nothing for it but frustration.",
        "Close, but close keeps nobody alive out here.",
    ),
    "critical_failure": (
        "{name} tries to {task}, and it goes wrong in the loudest way possible.",
        "Everything that can fail does, all at once.",
        "It is not just a miss; it is a catastrophe, and {first} is standing right in the middle of it.",
        "{first} realises the mistake a heartbeat too late to stop it.",
        "The attempt to {task} backfires spectacularly.",
        "One wrong move cascades into three more, and {name} can only watch it unravel.",
        "Somewhere, the universe is laughing, and {name} is the punchline.",
        "The situation doesn't just slip out of {first}'s hands; it bites on the way out.",
        "{name} will be reliving this one for a long time.",
        "There is a bang, or a crack, or a shout; it hardly matters which, because it's bad.",
        "It all goes sideways with impressive speed.",
        "In the space of a breath, a manageable problem becomes a very unmanageable one.",
        "{first} commits completely to exactly the wrong move.",
        "Even the best instincts of {a_arch} cannot save this one.",
        "Bad luck and worse timing collide, and {name} takes the full brunt of it.",
        "For a second nothing happens; then everything does, and none of it is good.",
    ),
    "attempt": (
        "{name} sets to work, trying to {task}.",
        "{first} commits to the attempt, and for a while there is nothing to do but keep at it.",
        "The effort to {task} begins in earnest.",
        "{first} gets started, jaw set, attention narrowed to the task.",
        "{name} weighs the risk and decides to {task} anyway.",
    ),
    "act": (
        "{name} moves to {task}.",
        "{first} doesn't waste time deliberating.",
        "It takes only a moment for {first} to {task}.",
        "{name} decides to {task}, and nothing stands in the way.",
        "Without fuss, {first} goes ahead with it.",
        "{first} takes a breath and gets on with it.",
    ),
    "observe": (
        "{name} takes a slow look around {place}.",
        "{first} takes it all in: {sight}, {sight2}, and {air}.",
        "{first} stops and lets {place} reveal itself.",
        "The longer {first} looks, the more {place} gives away: {sight}, and beyond it, {sight2}.",
        "{first} notes {sight} and files it away.",
    ),
    "talk": (
        "{npc} looks up, {npc_role_a} through and through, and considers {first} for a long moment.",
        "{npc} turns, the weary patience of {npc_role_a} in every line.",
        "{npc} answers {first} without missing a beat.",
        "It takes {npc} a moment to answer {first}.",
    ),
    "talk_alone": (
        "Nobody answers {first}; there is only {sound}.",
        "{first_pos} words hang in the air of {place}, and for a moment nothing replies.",
        "The words echo further than {first} meant them to.",
    ),
    "move": (
        "{name} moves on through {place}, past {sight}.",
        "Every step carries {first} deeper into {place}, with {sound} never far behind.",
        "The way ahead is narrow and uncertain, but {first} keeps going.",
        "{first} picks a route and follows it, alert for trouble.",
    ),
    "rest": (
        "Time stretches for {first}, and {sound} marks the minutes.",
        "{first} takes a moment to breathe, to check gear, to think.",
        "For once nothing demands attention, and {first} takes the chance to recover.",
    ),
}

DETAIL: dict[tuple[str, str], tuple[str, ...]] = {
    ("repair", "good"): (
        "The last connector seats with a click, and a status light blinks to a steady green.",
        "Something deep in the machinery catches, coughs, and settles into a healthy hum.",
        "The patch is ugly, but it holds, and it will keep holding.",
        "Power flows where {first} tells it to, throwing new light over {sight}.",
    ),
    ("repair", "bad"): (
        "A fuse pops with a flat bang, and the smell of scorched plastic fills the air.",
        "The fix holds for three heartbeats, then gives out with a tired whine.",
        "A spark bites {first_pos} fingers, and the housing goes dark again.",
        "Whatever is wrong runs deeper than {first} can reach from here.",
    ),
    ("pilot", "good"): (
        "The hull slides through the gap with a hand's breadth to spare.",
        "Thrusters flare in perfect sequence, and the ship answers like a living thing.",
        "The proximity alarm falls silent as {first} threads the needle.",
    ),
    ("pilot", "bad"): (
        "Metal screams along the hull as the ship scrapes something it shouldn't.",
        "The controls go heavy and sluggish, fighting {first} every centimetre.",
        "A warning klaxon joins the chorus, and the approach goes ragged.",
    ),
    ("tech", "good"): (
        "Lines of code cascade across the display as the last safeguard folds.",
        "A lock icon blinks from red to green, and somewhere a relay clicks over.",
        "The system accepts the spoofed credentials without so much as a warning flag.",
        "Power hums back through dead circuits, throwing new light over {sight}.",
        "The interface stops fighting and starts obeying.",
    ),
    ("tech", "bad"): (
        "The interface spits back an error in angry red letters.",
        "A countermeasure trips, and the screen floods with junk data.",
        "Sparks jump from the housing, and a sharp sting runs up {first_pos} arm.",
        "The system locks down tighter than before, logging every keystroke.",
        "Somewhere deeper in the network, something notices the intrusion.",
    ),
    ("athletics", "good"): (
        "Muscles burn, boots find purchase, and the gap closes behind {first}.",
        "{first} lands light and balanced, already looking for the next move.",
        "Momentum carries {first} exactly where it needs to.",
        "A handhold appears right where it needs to be, and {first} uses it.",
    ),
    ("athletics", "bad"): (
        "A foothold crumbles, and {first} scrabbles for balance.",
        "The landing jars every bone, and {first} ends up sprawled short of the mark.",
        "{first} slips, catches a ledge, and hangs there a moment too long.",
        "Breath comes ragged; the distance was further than it looked.",
    ),
    ("stealth", "good"): (
        "Shadows fold around {first} like a cloak.",
        "Footsteps pass within arm's reach and keep going.",
        "Not a sound, not a ripple: {first} is simply somewhere else now.",
        "Between one sweep of the lights and the next, {first} is through.",
    ),
    ("stealth", "bad"): (
        "A boot scuffs against something hard, loud as a gunshot in the quiet.",
        "A head turns, and then another.",
        "Something clatters underfoot, and the silence afterwards is worse than any alarm.",
        "A sensor blinks awake and swivels towards {first}.",
    ),
    ("combat", "good"): (
        "The shot goes exactly where {first} meant it to.",
        "Recoil kicks, and the round finds {target} dead centre.",
        "One clean motion, one clean result.",
        "The crack of the shot echoes through {place}, and nothing answers.",
    ),
    ("combat", "bad"): (
        "The shot goes wide, sparking off something hard and giving away {first_pos} position.",
        "The weapon bucks at the wrong moment, and the round vanishes into the dark.",
        "A misfire: a dry click where there should have been thunder.",
        "The target is already moving, and {first_pos} aim is a beat behind.",
    ),
    ("might", "good"): (
        "Something gives with a satisfying crack.",
        "Raw strength wins the argument.",
        "With a grunt and a final heave, the resistance simply gives up.",
        "{first} puts their whole weight into it, and it is enough.",
    ),
    ("might", "bad"): (
        "Muscles strain until they tremble, but nothing moves.",
        "Something pops in {first_pos} shoulder, and it isn't the obstacle.",
        "{first} heaves until vision greys at the edges, to no effect.",
        "The effort costs more than it gains, and it shows.",
    ),
    ("social", "good"): (
        "Something shifts in {listener_pos} expression; the words have landed.",
        "The tension goes out of the moment, and {first} can feel the deal taking shape.",
        "Whatever {first} said, it was exactly the right thing.",
        "For the first time, {listener_pos} guard comes down a little.",
    ),
    ("social", "bad"): (
        "The words come out wrong, and {first} can see it land badly.",
        "A cold silence follows; nobody is buying it.",
        "{first} pushes a little too hard, and the door that was opening swings shut.",
        "There is a flicker of contempt, quickly hidden, but not quickly enough.",
    ),
    ("wits", "good"): (
        "The pattern snaps into focus, obvious now that {first} has seen it.",
        "A detail everyone else missed turns out to be the key.",
        "Data, memory and intuition line up into a single clear answer.",
        "{first} files the discovery away; it will matter soon.",
    ),
    ("wits", "bad"): (
        "The clues refuse to add up, and the answer stays just out of reach.",
        "{first} chases a promising lead straight into a dead end.",
        "Too much noise, not enough signal.",
        "Whatever was here to find, it stays hidden for now.",
    ),
    ("any", "act"): (
        "{place} absorbs the moment with {sound}.",
        "For a beat, the only response is {sound}.",
        "Nothing dramatic follows, but the situation has shifted, just slightly.",
        "Out of the corner of {first_pos} eye: {sight}.",
    ),
    ("any", "attempt"): (
        "Whether it will be enough is not yet clear.",
        "It is slow going, and {place} offers no help.",
        "The outcome hangs in the balance, unresolved for now.",
        "Progress comes in fits and starts, nothing decisive yet.",
    ),
}

CRIT_FLOURISH = {
    "critical_success": (
        "For a heartbeat, even {place} seems to hold still in acknowledgement.",
        "Better still, it opens up an advantage nobody expected.",
        "Anyone watching will remember this.",
        "It leaves {first} in a stronger position than before, with time to spare.",
        "There's a bonus, too: something useful glints in the aftermath.",
    ),
    "critical_failure": (
        "Worse, the noise carries, and someone, or something, will come to investigate.",
        "The mistake leaves a mark: {first} is hurt, not badly, but enough to matter.",
        "Something important breaks in the process, and it won't be easy to replace.",
        "Now there is a new problem on top of the old one.",
        "The fallout will follow {first} for a while.",
    ),
}

MARGIN = {
    "narrow_win": ("It is the narrowest of margins.", "By a hair, but a hair is enough."),
    "wide_win": ("There was never really any doubt.", "{first} makes it look easy."),
    "narrow_loss": ("It misses by a whisker.", "So close that it stings."),
    "wide_loss": (
        "It was never going to work, and it didn't.",
        "In hindsight, it was hopeless from the start.",
    ),
}

OPENERS: dict[str, tuple[str, ...]] = {
    "grim": (
        "In {place}, {sound} is the only thing that sounds alive.",
        "{place} offers nothing but {air} and {sound}.",
        "The dark presses close in {place}, broken only by {sight}.",
        "Nothing in {place} is kind, least of all {air}.",
    ),
    "wry": (
        "{place} is doing its best impression of a welcoming environment: {sound}, and {air}.",
        "Somewhere nearby, {sound} keeps time like a bored drummer.",
        "The ambience in {place} remains, charitably, an acquired taste: {air}, and {sight}.",
    ),
    "heroic": (
        "Across {place}, {sight} frames the moment like a banner.",
        "{sound} rolls through {place} like a war drum.",
        "There is {air} here, and beneath it the promise of something greater.",
    ),
    "whimsical": (
        "{place} hums along to itself: {sound}, and the occasional suspicious gurgle.",
        "Even the scenery is trying too hard: {sight}, lit like a stage set.",
        "{sound} provides a soundtrack nobody asked for.",
    ),
}

CLOSERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("grim", "good"): (
        "It is a small victory, and out here small victories are all anyone gets.",
        "For now, the dark gives a little ground.",
        "Nobody says well done; nobody ever does.",
        "One problem down, and {world} always has more.",
    ),
    ("grim", "bad"): (
        "Out here, mistakes are paid for in blood, and the bill always comes due.",
        "The silence afterwards says everything.",
        "{world} does not forgive, and it does not forget.",
        "Somewhere, someone is already counting the cost.",
    ),
    ("grim", "neutral"): (
        "The quiet holds, for now.",
        "Nothing here stays still for long.",
        "{world} is patient, and it is always watching.",
    ),
    ("wry", "good"): (
        "Someone should really be writing this down.",
        "Chalk one up for improvisation.",
        "Not bad for a day that started with instant caf and bad news.",
        "It's almost suspicious how well that went.",
    ),
    ("wry", "bad"): (
        "In fairness, the plan did look better on paper.",
        "Well, that's one way to learn.",
        "That will make a fun story later, assuming there is a later.",
        "On the bright side, the view from rock bottom is very clear.",
    ),
    ("wry", "neutral"): (
        "So far, so unremarkable, which out here counts as good news.",
        "Nobody has shot at anyone yet, so that's nice.",
        "The day, as ever, is young.",
    ),
    ("heroic", "good"): (
        "The stars themselves seem to burn a little brighter.",
        "This is how legends start.",
        "Hope, for the first time in a while, feels earned.",
        "The way forward is open, and {first} takes it.",
    ),
    ("heroic", "bad"): (
        "But heroes are measured by how they rise, not how they fall.",
        "It is a setback, nothing more, and the fight goes on.",
        "{first} sets their jaw; this isn't over.",
        "Defeat tastes bitter, but it sharpens the resolve.",
    ),
    ("heroic", "neutral"): (
        "Whatever comes next, {first} will be ready.",
        "Somewhere ahead, destiny is waiting.",
        "The road is long, but it leads somewhere.",
    ),
    ("whimsical", "good"): (
        "Somewhere, a small maintenance drone applauds.",
        "The universe, grudgingly, awards a gold star.",
        "If there were a scoreboard, it would be flashing.",
        "Victory smells faintly of burnt toast, as it so often does.",
    ),
    ("whimsical", "bad"): (
        "A nearby cleaning bot beeps in what can only be sympathy.",
        "The universe makes a small note in its book of funny moments.",
        "Somewhere, a probability engine giggles.",
        "Not ideal; delightfully, spectacularly not ideal.",
    ),
    ("whimsical", "neutral"): (
        "The universe, for once, seems content to wait.",
        "Somewhere, a kettle is boiling, metaphorically speaking.",
        "All is calm, in the suspicious way calm things are.",
    ),
}

HOOKS: dict[str, tuple[str, ...]] = {
    "good": (
        "Word of this will reach {faction} before long, and they will take notice.",
        "Whoever runs things for {faction} around here just lost a little of their grip.",
        "It is the kind of work {faction} pays well for, or pays well to stop.",
        "{npc} will hear about it, and will probably pretend not to be impressed.",
        "Even {npc}, {npc_role_a} who has seen it all, would have nodded at that.",
        "It's a story worth trading to {npc} later.",
    ),
    "bad": (
        "If {faction} has eyes here, they have just seen something worth reporting.",
        "Somewhere, a {faction_bare} handler is going to enjoy hearing about this.",
        "It is exactly the kind of opening {faction} loves to exploit.",
        "{npc} is going to hear about this, and will never let it go.",
        "Somewhere, {npc} would be laughing.",
        "{npc_first} warned about exactly this kind of thing.",
    ),
    "neutral": (
        "Signs of {faction} are everywhere here, if one knows where to look.",
        "Rumour says {npc} has been asking about strangers in {place}.",
        "A {faction_bare} insignia, half scraped away, watches over everything.",
        "{npc}, {npc_role_a} with a long memory, is never far from places like this.",
    ),
}

OBJECTIVE: dict[str, tuple[str, ...]] = {
    "good": (
        "It is one step closer to the real goal: {objective}.",
        "The objective, to {objective_lc}, suddenly looks within reach.",
        "Progress, at last, on the task at hand: {objective}.",
    ),
    "bad": (
        "The real goal, to {objective_lc}, feels further away than ever.",
        "And the objective still waits: {objective}.",
        "Meanwhile the clock keeps running on the mission: {objective}.",
    ),
    "neutral": (
        "The objective hasn't changed: {objective}.",
        "Somewhere beyond all this, the objective waits: {objective}.",
        "{first} keeps the mission in mind: {objective}.",
    ),
}

PROMPTS = (
    "What does {first} do next?",
    "The next move belongs to {first}.",
    "The moment hangs, waiting for a decision.",
    "What now?",
)

NPC_REPLIES: dict[str, tuple[str, ...]] = {
    "grim": (
        "Say what you came to say. Every minute here costs me.",
        "You shouldn't be here. None of us should.",
        "I've buried friends for less than what you're asking.",
        "Trust is a luxury. I can't afford it this week.",
        "Ask me again when we're both still breathing tomorrow.",
    ),
    "wry": (
        "Oh good, company. I was running dangerously low on bad ideas.",
        "That's a question. Whether it's a good one, we'll see.",
        "You've got that look. The one right before things get expensive.",
        "I'd tell you, but then I'd have to invoice you.",
        "Bold opening. Let's see where it goes.",
    ),
    "heroic": (
        "Then we stand together, whatever comes.",
        "I've heard of you. I hoped the stories were true.",
        "If you're going where I think you're going, you'll need every friend you can get.",
        "Ask, and if I can help, I will.",
        "The tide's turning. I can feel it.",
    ),
    "whimsical": (
        "Hello! Is it a hello? It feels like a hello.",
        "Ah, a talker. My favourite kind of stranger.",
        "If this is about the missing cargo drone, I have an alibi. Several, in fact.",
        "Ask away. I'm told I'm eighty percent helpful.",
        "Splendid. I was just thinking the day needed more conversation.",
    ),
}
REPLY_FRAMES = (
    '"{reply}"',
    '"{reply}" The words come low and even.',
    'A voice crackles over a nearby speaker: "{reply}"',
)

LOOT = {
    "poor": (
        "a cracked power cell and a handful of stripped screws",
        "ration wrappers, long since emptied",
        "a dead comm unit and someone's faded family holo",
        "a few bent credit chits, worth less than the effort",
    ),
    "decent": (
        "a half-charged power cell",
        "a sealed medkit with most of its contents",
        "a sidearm magazine, still full",
        "a data chip with an intact header",
        "a coil of good cable and a working multitool",
    ),
    "great": (
        "a military-grade med-injector, still sealed",
        "a credstick loaded with untraceable funds",
        "a pristine plasma cutter",
        "a star chart marked with coordinates no one should have",
        "an encrypted data core stamped with a corporate seal",
    ),
}
LOOT_LINES = {
    "poor": (
        "A careful search turns up little more than {loot}.",
        "{first} comes away with {loot}, and not much else.",
    ),
    "decent": ("The search pays off modestly: {loot}.", "Tucked behind a loose panel, {first} finds {loot}."),
    "great": (
        "Jackpot: tucked away where no one thought to look, {first} finds {loot}.",
        "{first_pos} patience is rewarded with {loot}.",
    ),
}

# Verbs an objective may open with, so "Restore power…" can also read "to restore power…".
OBJECTIVE_VERBS = (
    "restore",
    "find",
    "rescue",
    "escort",
    "recover",
    "reach",
    "stop",
    "destroy",
    "deliver",
    "investigate",
    "protect",
    "escape",
    "secure",
    "retrieve",
    "locate",
    "defeat",
    "survive",
    "steal",
    "uncover",
    "repair",
    "expose",
    "negotiate",
    "hack",
    "infiltrate",
    "sabotage",
    "capture",
    "evacuate",
    "defend",
    "discover",
    "learn",
    "get",
    "save",
    "track",
    "eliminate",
    "contact",
    "activate",
    "disable",
    "salvage",
    "board",
    "bring",
    "warn",
    "clear",
    "free",
    "broker",
    "seize",
    "hold",
    "decode",
    "decrypt",
    "map",
    "explore",
    "open",
    "shut",
    "win",
)

# Lead words stripped from an action so its verb comes first ("I try to carefully hack…").
FILLERS = (
    "i",
    "i'll",
    "i'm",
    "i'd",
    "we",
    "we'll",
    "we're",
    "will",
    "shall",
    "try",
    "tries",
    "attempt",
    "attempts",
    "want",
    "wants",
    "to",
    "going",
    "gonna",
    "am",
    "then",
    "now",
    "also",
    "just",
    "quickly",
    "carefully",
    "quietly",
    "slowly",
    "desperately",
    "cautiously",
    "immediately",
    "swiftly",
    "calmly",
    "silently",
    "gently",
    "finally",
    "must",
    "need",
    "needs",
    "should",
    "can",
    "could",
    "would",
    "let",
    "me",
    "first",
)
PARTICLES = (
    "up",
    "down",
    "into",
    "past",
    "through",
    "over",
    "across",
    "at",
    "onto",
    "on",
    "in",
    "off",
    "out",
    "around",
    "under",
    "open",
    "along",
)
STOPS = (
    "to",
    "and",
    "but",
    "so",
    "while",
    "with",
    "before",
    "after",
    "then",
    "because",
    "for",
    "using",
    "by",
    "from",
    "if",
    "until",
    "as",
)
DETERMINERS = (
    "the",
    "a",
    "an",
    "my",
    "this",
    "that",
    "those",
    "these",
    "his",
    "her",
    "their",
    "its",
    "some",
    "every",
    "each",
)
PRONOUNS = {
    "my": "their",
    "me": "them",
    "myself": "themselves",
    "mine": "theirs",
    "i": "they",
    "i'm": "they're",
    "we": "they",
    "our": "their",
    "us": "them",
    "i've": "they've",
}


def _forms(word: str) -> set[str]:
    """Rough inflections, so "hacking" and "sneaks" match "hack" and "sneak"."""
    out = {word, word + "s", word + "es", word + "ed", word + "d", word + "ing"}
    if word.endswith("e"):
        out.add(word[:-1] + "ing")
    if word.endswith("y"):
        out |= {word[:-1] + "ies", word[:-1] + "ied"}
    if len(word) > 2 and word[-1] not in "aeiouwxy" and word[-2] in "aeiou" and word[-3] not in "aeiou":
        out |= {word + word[-1] + "ing", word + word[-1] + "ed"}
    return out


def _index(table: tuple[tuple[str, str, str, tuple[str, ...]], ...]) -> dict[str, tuple[str, str, str]]:
    return {form: (cat, att, skill) for cat, att, skill, words in table for w in words for form in _forms(w)}


def _verb_index(*groups: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {form: w for group in groups for w in group for form in _forms(w)}


# Lookup tables built once at import: inflected form -> (category, attribute, skill) or base verb.
STRONG = _index(CHECK_WORDS)
WEAK = _index(WEAK_CHECK_WORDS)
_CHECK_BASES = [w for *_, words in (*CHECK_WORDS, *WEAK_CHECK_WORDS) for w in words]
VERB_BASE = _verb_index(_CHECK_BASES, TALK_WORDS, LOOK_WORDS, MOVE_WORDS, REST_WORDS, OTHER_VERBS, LOOT_WORDS)
TALK = _verb_index(TALK_WORDS)
LOOK = _verb_index(LOOK_WORDS)
MOVE = _verb_index(MOVE_WORDS)
REST = _verb_index(REST_WORDS)
LOOT_FORMS = _verb_index(LOOT_WORDS)
OBJECTIVE_HEADS = frozenset(_CHECK_BASES) | frozenset(OBJECTIVE_VERBS) | frozenset(MOVE_WORDS)
FILLER_SET = frozenset(FILLERS)
PARTICLE_SET = frozenset(PARTICLES)
STOP_SET = frozenset(STOPS)
DETERMINER_SET = frozenset(DETERMINERS)

# ---- game-engine tools (npc_speak, mission_advance, combat_start) ---------------------------

NPC_AGENDA_LINES = (
    "Listen. All I want is to {agenda}. Help me, or stay out of my way.",
    "You want to know what I'm after? To {agenda}. That's all.",
    "I'll be plain with you: I mean to {agenda}, and I'm running out of time.",
    "Everyone here wants something. Me? I need to {agenda}.",
)
ADVANCE_LINES = {
    "done": (
        "That's one thing off the list — and everyone at the table feels it.",
        "Whatever else happens tonight, that part of the job is done.",
        "A small victory, but a real one: the job moves forward.",
    ),
    "not_yet": (
        "It's progress, but the job isn't done yet.",
        "Not finished — not yet. Something still stands in the way.",
        "Close, but the real work is still ahead.",
    ),
}
COMBAT_LINES = (
    "Weapons come up all at once; the game rolls for who moves first.",
    "Time snaps tight — everyone reaches for a weapon at once.",
    "Violence arrives the way it always does out here: all at once.",
)
STATUS_LINES = (
    "It leaves a mark: {label}, for now.",
    "The slip costs more than time — {label}, and it shows.",
    "Nobody walks away from that clean — {label}.",
)

# ---- the private aside (narrative.asides): only the acting player reads it ----------------

ASIDE_LEAD = "Only you recall:"
ASIDE_ALSO = "You also know:"
ASIDE_CLOSERS = {
    "grim": (
        "Nobody else at the table knows it. Yet.",
        "Secrets keep people alive out here — or get them killed.",
    ),
    "wry": (
        "Funny how nobody else seems to know that.",
        "You could share it. You could also not.",
    ),
    "heroic": (
        "Nobody else at the table knows it — use it well.",
        "It may be the edge this moment needs.",
    ),
    "whimsical": (
        "It tickles the back of your mind like a secret shared with the stars.",
        "Nobody else knows — which makes it rather fun.",
    ),
}
