package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// traefikPID finds the Traefik process started in dir. traefiktest keeps
// its *exec.Cmd private; its working directory is unique to the test, so
// the process whose cwd it is can only be that Traefik.
func traefikPID(dir string) (int, error) {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || cwd != want {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if strings.Contains(filepath.Base(exe), "traefik") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no Traefik process runs in %s", dir)
}
