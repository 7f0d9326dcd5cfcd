//go:build !linux

package bcryptpool

// lowerThreadPriority does nothing where threads have no nice value of
// their own.
func lowerThreadPriority() {}
