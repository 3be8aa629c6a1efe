"""Control sources (OSC, MIDI, gestures, automation) and their mappings onto parameters."""
