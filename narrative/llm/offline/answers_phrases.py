"""Phrase tables for the offline GM's answers (narrative.llm.offline.answers). Plain data.

Fields: {first}/{name} the actor, {place} the scene, {npc}/{npc_short} an NPC ("Sister Ameline",
"Sister Ameline" / "Ossian"), {fact} a sentence from the mission (ends with its own stop),
{agenda} an NPC's agenda as a verb phrase ("keep the relay's last song playing"), {who} an NPC's
self-description ("Sister Ameline, a choir cantor of the Quiet Choir"), {faction} a faction's name
mid-sentence. A template whose field is empty is never picked (Writer.pick).
"""

from __future__ import annotations

# The GM's lead-in before the facts: the actor looks, listens, thinks back.
LOOK_LEADS: dict[str, tuple[str, ...]] = {
    "grim": (
        "{first} looks closer, and {place} gives up a little of what it knows.",
        "{first} takes the time to look properly.",
        "Up close, {place} tells {first} more than {first} would like.",
    ),
    "wry": (
        "{first} squints at it with the professional suspicion of someone who has been fooled before.",
        "{first} takes a proper look, which is more than most people bother with.",
        "A closer look costs nothing, so {first} takes one.",
    ),
    "heroic": (
        "{first} studies {place} with a careful eye.",
        "{first} takes a long look, and the details line up.",
        "Nothing escapes {first} for long.",
    ),
    "whimsical": (
        "{first} peers at it the way one peers at a suspicious sandwich.",
        "{first} leans in for a closer look; the details lean back.",
        "{first} takes a good long look, and {place} obligingly gives something away.",
    ),
}
THINK_LEADS = (
    "{first} thinks it through.",
    "{first} takes stock.",
    "{first} runs over what the party knows.",
)
MEMORY_LEADS = (
    "{first} thinks back.",
    "{first} remembers.",
    "It comes back to {first}:",
)
# Nothing in the game answers the question (yet).
UNKNOWN = (
    "Nothing in {place} gives that away, not yet.",
    "Whatever the answer is, {place} keeps it to itself for now.",
    "{first} finds no answer to that here, not yet.",
)
ABSENT = ("{npc} isn't here to answer.", "There is no sign of {npc} here to ask.")
ASK_NPC = (
    "{npc} looks like someone who knows more about that.",
    "If anyone here knows, it is {npc}.",
    "{npc} might be able to say more, if asked.",
)
TRY_NEXT = (
    "A closer look, or the right question to the right person, might turn it up.",
    "It may take more than a look to find out.",
)

# Objectives, clocks, who is here.
GOALS_ONE = (
    "The job right now: {goal}.",
    "One thing matters right now: {goal}.",
    "What needs doing is clear enough: {goal}.",
)
GOALS_MANY = (
    "Right now the job is to {goal}; after that, {goal2}.",
    "Two things need doing: {goal}, and {goal2}.",
)
GOALS_WAITING = ("Once that is done: {later}.", "Still ahead, after that: {later}.")
GOALS_DONE = ("Already done: {done}.",)
GOALS_NONE = (
    "Nothing is left on the list; whatever happens next is up to the party.",
    "Every objective in sight is settled, one way or another.",
)
CLOCK_LINE = ("{label}: {value} of {size}.",)
CLOCK_NEAR = "{label} is one step from the end: {value} of {size}."
HERE_SOME = ("Here with {first}: {people}.", "Present: {people}.")
HERE_NONE = ("Nobody else is here, as far as {first} can tell.", "{first} is alone here, it seems.")
ABOUT_NPC = (
    "{who}.",
    "{first} knows the name: {who}.",
)
ABOUT_AGENDA = (
    "By the look of it, they mean to {agenda}.",
    "Word is, they are here to {agenda}.",
)

# An NPC's answer, said in their own voice (the npc_speak line).
SELF: dict[str, tuple[str, ...]] = {
    "grim": ("I'm {who}.", "{who}. For what that's worth out here."),
    "wry": ("{who}, at your service. Mostly.", "I'm {who}. Don't wear it out."),
    "heroic": ("I am {who}.", "My name is {who}, and I'm glad you made it."),
    "whimsical": ("{who}! Delighted. Probably.", "Oh, I'm {who}. Everyone asks."),
}
WANT = (
    "I'm here to {agenda}.",
    "What do I want? To {agenda}.",
    "All I want is to {agenda}.",
)
WANT_UNKNOWN = ("What I want is my own business.", "Ask me something else.")
TELL: dict[str, tuple[str, ...]] = {
    "grim": ("{fact}", "Fine. {fact}", "You want it plain? {fact}"),
    "wry": ("{fact}", "Since you ask so nicely: {fact}", "Short version? {fact}"),
    "heroic": ("{fact}", "I'll tell you what I know. {fact}", "Listen. {fact}"),
    "whimsical": ("{fact}", "Ooh, I know this one. {fact}", "Well! {fact}"),
}
# A fact the NPC keeps until pressed (`knows ... when pressed`).
REFUSE: dict[str, tuple[str, ...]] = {
    "grim": ("That's not something I say out loud. Not to you, not yet.", "Leave it alone."),
    "wry": (
        "Nice try. Ask me again when we're friends.",
        "That one's going to cost you more than a question.",
    ),
    "heroic": ("I can't tell you that. Not yet.", "Some things aren't mine to tell. Not yet."),
    "whimsical": ("My lips are sealed. Mostly with stubbornness.", "That's a secret. A good one, too."),
}
# Won over by a social check: the fact kept until pressed comes out.
YIELD = ("Fine. You want the truth? {fact}", "All right, all right. {fact}", "Keep this to yourself. {fact}")
REFUSE_FACTION = ("That's {faction} business, not yours.",)
DONT_KNOW: dict[str, tuple[str, ...]] = {
    "grim": ("I don't know, and I don't guess.", "No idea. Ask someone who cares."),
    "wry": ("No idea, and I've had a lot of time to think about it.", "You're asking the wrong person."),
    "heroic": ("I wish I knew. I don't.", "I can't help you there, I'm afraid."),
    "whimsical": ("Not a clue! But I'm very good at other things.", "That one is beyond me, alas."),
}
ASK_OTHER = ("Ask {npc_short}.", "{npc_short} might know.")
# A spoken line that asks nothing: the NPC answers with what they want.
GREET = (
    "Listen. All I want is to {agenda}. Help me, or stay out of my way.",
    "I'll be plain with you: I mean to {agenda}.",
    "Everyone here wants something. Me? I need to {agenda}.",
)
GREET_PLAIN = ("Say what you came to say.", "Well? I'm listening.")

# The lead-in to a question put to an NPC (before their npc_speak line).
ASK_LEADS = (
    "{first} puts the question to {listener}.",
    "{first} turns to {listener} and asks.",
    "{first} catches {listener_pos} eye and asks.",
)

TALK_LEADS = (
    "{first} turns to {listener}.",
    "{first} steps up to {listener}.",
    "{first} gets {listener_pos} attention.",
)

# After an NPC has spoken (the npc_speak tool ran): the table's view, no second quote.
AFTER_NPC = (
    "{npc} waits to see what {first} makes of that.",
    "{npc} holds {first_pos} gaze for a moment longer, then looks away.",
    "{npc} says nothing more, for now.",
    "The words hang between {npc} and {first} for a moment.",
)
