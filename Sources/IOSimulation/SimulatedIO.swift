import IO

// The simulated backend lives here (issue 11): a seeded, deterministic fake kernel with a
// manual clock, for the simulation tests only.
