"""`sagaquake run`: a whole run from a suite file, up to the gate's exit code."""
