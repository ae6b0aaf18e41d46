package file

// SetFirstReadHook makes New call f right after its first read of the
// file; the returned func removes it.
func SetFirstReadHook(f func(path string)) (restore func()) {
	testHookFirstRead = f
	return func() { testHookFirstRead = nil }
}
