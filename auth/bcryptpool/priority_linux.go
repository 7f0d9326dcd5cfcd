package bcryptpool

import "syscall"

// lowerThreadPriority raises the nice value of the calling OS thread (on
// Linux, setpriority on a thread id applies to that thread only), so that
// the kernel runs other threads first when they are ready.
func lowerThreadPriority() {
	syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 10) // best effort
}
