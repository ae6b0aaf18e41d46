package driver

import (
	"fmt"
	"os"
	"syscall"
)

// ProtocolOutput returns a file writing to the process's standard output and
// points file descriptor 1 at standard error from then on. dubbo-go and its
// gost logger write their logs to standard output through writers made at
// package init, which no logger setting reaches; afterwards they land on
// standard error and standard output carries only the protocol.
func ProtocolOutput() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("keep standard output: %w", err)
	}
	if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, fmt.Errorf("send logs to standard error: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol-stdout"), nil
}
