package scale

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
)

// noopModule is the do-nothing plugin of harness/bench/noop: the baseline
// Traefik runs it instead of traefik-authkit.
const noopModule = "github.com/traefik-authkit/noop"

// traefikProc is one Traefik process started by the harness. It is started
// here rather than with traefiktest.Start for three reasons: the harness
// needs its pid (resident memory), its log must stay small at hundreds of
// requests a second (Traefik logs at ERROR, which still lets the plugin's
// standard error through, and nothing is written to disk), and the
// plugin's lines are read as they come (session_cache events) instead of
// being kept in memory for the whole run.
type traefikProc struct {
	name string
	url  string
	cmd  *exec.Cmd
	dir  string
	done chan struct{} // closed when the process has exited and its output is read
	// onLine is called for every line of Traefik's output, from one goroutine.
	onLine func(at time.Time, line string)

	mu    sync.Mutex
	tail  []string // the last lines, for failure reports
	lines int
}

// pluginSpec is one plugin copied into Traefik's plugins-local.
type pluginSpec struct {
	alias, module, src string
}

// startTraefik runs Traefik with the given local plugins and dynamic
// configuration (JSON) and waits until path answers with want.
func startTraefik(name, bin string, plugins []pluginSpec, dynamic map[string]any, readyPath string, onLine func(time.Time, string)) (*traefikProc, error) {
	dir, err := os.MkdirTemp("", "authkit-scale-"+name+"-")
	if err != nil {
		return nil, err
	}
	var local strings.Builder
	for _, p := range plugins {
		if err := loader.CopyPlugin(p.src, filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(p.module))); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		fmt.Fprintf(&local, "    %s:\n      moduleName: %s\n", p.alias, p.module)
	}
	dyn, err := json.Marshal(dynamic)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "dynamic.json"), dyn, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		tr, err := launch(name, bin, dir, local.String(), readyPath, onLine)
		if err == nil {
			return tr, nil
		}
		// Another process can take a free port before Traefik binds it.
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func launch(name, bin, dir, localPlugins, readyPath string, onLine func(time.Time, string)) (*traefikProc, error) {
	port, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	static := fmt.Sprintf(`global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:%s"
  traefik:
    address: "127.0.0.1:%s"
ping:
  entryPoint: traefik
experimental:
  localPlugins:
%sproviders:
  file:
    filename: %s
log:
  level: ERROR
  noColor: true
`, port, apiPort, localPlugins, filepath.Join(dir, "dynamic.json"))
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir // plugins-local is resolved against the working directory
	cmd.Env = hermeticEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	// Own process group, and killed with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start traefik: %w", err)
	}
	tr := &traefikProc{name: name, url: "http://127.0.0.1:" + port, cmd: cmd, dir: dir, done: make(chan struct{}), onLine: onLine}
	go tr.read(out)

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-tr.done:
			return nil, fmt.Errorf("traefik %s exited early: %s", name, tr.tailText())
		default:
		}
		if resp, err := client.Get(tr.url + readyPath); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			// Traefik's own 404 means the router (or its middleware) is not up yet.
			if resp.StatusCode != http.StatusNotFound || string(body) != "404 page not found\n" {
				return tr, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	tr.stop()
	return nil, fmt.Errorf("traefik %s did not route %s within a minute: %s", name, readyPath, tr.tailText())
}

// hermeticEnv is the environment without the WORKOS_ variables the plugin
// falls back to.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WORKOS_") && !strings.HasPrefix(kv, "NEXT_PUBLIC_WORKOS_") {
			env = append(env, kv)
		}
	}
	return env
}

// read hands every output line to onLine and keeps the last ones.
func (tr *traefikProc) read(out io.Reader) {
	defer close(tr.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		at := time.Now()
		if tr.onLine != nil {
			tr.onLine(at, line)
		}
		tr.mu.Lock()
		tr.lines++
		if len(tr.tail) >= 40 {
			tr.tail = tr.tail[1:]
		}
		tr.tail = append(tr.tail, line)
		tr.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, out)
	_ = tr.cmd.Wait()
}

func (tr *traefikProc) tailText() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprintf("%d lines of output; the last:\n%s", tr.lines, strings.Join(tr.tail, "\n"))
}

// alive reports whether the process still runs.
func (tr *traefikProc) alive() bool {
	select {
	case <-tr.done:
		return false
	default:
		return true
	}
}

func (tr *traefikProc) pid() int { return tr.cmd.Process.Pid }

// rssMiB reads the process's resident memory (VmRSS).
func (tr *traefikProc) rssMiB() (float64, error) { return traefiktest.RSSMiB(tr.pid()) }

// stop sends SIGTERM to Traefik's process group, then SIGKILL after five
// seconds, and removes its directory.
func (tr *traefikProc) stop() {
	if tr == nil || tr.cmd.Process == nil {
		return
	}
	pgid := -tr.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-tr.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-tr.done
	}
	os.RemoveAll(tr.dir)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTicks = 100

// cpuSeconds reads the user and system CPU time pid has used.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// after it (state is field 3; utime and stime are 14 and 15).
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(fields[11], 64)
	stime, err2 := strconv.ParseFloat(fields[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// loadAverage reads the machine's 1-minute load average.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}
