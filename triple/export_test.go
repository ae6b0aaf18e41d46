package triple

// MaxIdleWorkers is maxIdleWorkers, for the bounds of the attack tests.
const MaxIdleWorkers = maxIdleWorkers
