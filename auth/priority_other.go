//go:build !linux

package auth

// lowerThreadPriority does nothing where threads have no nice value of
// their own.
func lowerThreadPriority() {}
