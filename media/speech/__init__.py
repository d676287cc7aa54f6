"""Voice: speech-to-text for push-to-talk actions and text-to-speech for the GM's narration.

- `audio`: decoding an utterance (PyAV), the loudness gate, WAV encoding (no Django).
- `registry`: the `stt` and `tts` provider kinds (`local`, `openai`, `openai_compatible`).
- `voices`: which voice speaks (GM from the personality's tts_profile, NPCs by DSL voice or hash).
- `sentences`: the incremental sentence splitter the narration listener feeds deltas to (pure).
- `narration`: the DeltaStream listener that speaks the narration as it streams.
- `services`: transcribing one utterance for one player (checks, caps, rate limit).
"""
