//go:build !unix

package file

import (
	"context"
	"os"
	"sync"
)

var processLock sync.Mutex

// lockFile serializes writers within this process only: there is no
// portable advisory lock outside unix.
func lockFile(context.Context, string) (func(), error) {
	processLock.Lock()
	return processLock.Unlock, nil
}

func currentUser() string {
	if u := os.Getenv("USERNAME"); u != "" {
		return u
	}
	return "user"
}

// processAlive cannot check other processes portably; owners count as alive.
func processAlive(int) bool { return true }
