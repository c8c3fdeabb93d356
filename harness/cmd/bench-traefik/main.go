// Command bench-traefik measures throughput through the real Traefik
// v3.6.12 with wrk, in one run and alternating rounds, for:
//
//	none    a router with no middleware
//	noop    a do-nothing plugin (the floor any interpreted plugin costs)
//	floor   a plugin that does only the header work SPEC asks for on a
//	        signed-in request, authenticating nothing (bench/floor): the
//	        floor any implementation of the contract costs
//	signed  traefik-authkit with a signed-in session cookie
//	public  traefik-authkit on a public path, no cookie
//
// and prints requests per second, the ratios between them, and Traefik's
// resident memory after the run beside a Traefik that only ran the
// do-nothing plugin. Everything listens on 127.0.0.1; the run stops by itself.
//
//	./scripts/bench.sh [-rounds 5] [-duration 10s]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/traefik-authkit/authkit"
	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

const cookiePassword = "bench-cookie-password-0123456789abcdefghij"

var targets = []string{"none", "noop", "floor", "signed", "public"}

// profileDir, when set, asks Traefik (api.debug) for a CPU profile of the
// first round of each target.
var profileDir string

func main() {
	rounds := flag.Int("rounds", 5, "alternating rounds per target")
	duration := flag.Duration("duration", 10*time.Second, "wrk duration per round")
	connections := flag.Int("connections", 32, "wrk connections")
	flag.StringVar(&profileDir, "profile", "", "write a CPU profile of Traefik per target of the first round into this directory")
	flag.Parse()
	if err := run(*rounds, *duration, *connections); err != nil {
		log.Fatal("bench-traefik: ", err)
	}
}

func run(rounds int, duration time.Duration, connections int) error {
	binary, err := traefiktest.BinaryPath()
	if err != nil || binary == "" {
		return fmt.Errorf("Traefik is not built; run harness/build-traefik.sh (%v)", err)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is not installed (apt-get install wrk)")
	}
	root, err := loader.RepoRoot()
	if err != nil {
		return err
	}
	fake := fakeworkos.New(fakeworkos.Options{AccessTokenTTL: 24 * time.Hour})
	api, stopFake, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer stopFake()
	var missingIdentity atomic.Int64
	upstream, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/signed") && r.Header.Get("X-Workos-User-Id") == "" {
			missingIdentity.Add(1)
		}
		w.Write([]byte("ok\n"))
	}))
	if err != nil {
		return err
	}
	cookie, err := sessionCookie(fake)
	if err != nil {
		return err
	}

	config := authKitConfig(api, fake)
	floorHeaders, err := upstreamIdentity(config, cookie)
	if err != nil {
		return err
	}
	full, err := startTraefik(binary, root, dynamicConfig(upstream, config, floorHeaders))
	if err != nil {
		return err
	}
	defer full.stop()
	for _, t := range targets {
		if err := check(full.url+"/"+t+"/x", cookieFor(t, cookie)); err != nil {
			return fmt.Errorf("%s: %v", t, err)
		}
	}

	results := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		order := targets
		if r%2 == 1 { // alternate the order so drift hits every target alike
			order = []string{"public", "signed", "floor", "noop", "none"}
		}
		for _, t := range order {
			var profiled chan error
			if profileDir != "" && r == 0 {
				profiled = make(chan error, 1)
				go func(t string) { profiled <- saveProfile(full.apiURL, filepath.Join(profileDir, t+".pprof"), duration) }(t)
			}
			rps, err := wrk(full.url+"/"+t+"/x", cookieFor(t, cookie), duration, connections)
			if err != nil {
				return err
			}
			if profiled != nil {
				if err := <-profiled; err != nil {
					return err
				}
			}
			results[t] = append(results[t], rps)
			fmt.Printf("round %d %-7s %9.0f req/s\n", r+1, t, rps)
		}
	}
	fullRSS := rssMiB(full.cmd.Process.Pid)

	floor, err := startTraefik(binary, root, dynamicConfig(upstream, nil, nil))
	if err != nil {
		return err
	}
	defer floor.stop()
	for r := 0; r < rounds; r++ {
		for _, t := range []string{"none", "noop"} {
			if _, err := wrk(floor.url+"/"+t+"/x", cookie, duration, connections); err != nil {
				return err
			}
		}
	}
	floorRSS := rssMiB(floor.cmd.Process.Pid)

	med := map[string]float64{}
	for _, t := range targets {
		med[t] = median(results[t])
	}
	fmt.Printf("\nmedian of %d rounds of %s, %d connections, 2 wrk threads:\n", rounds, duration, connections)
	for _, t := range targets {
		fmt.Printf("  %-7s %9.0f req/s\n", t, med[t])
	}
	fmt.Printf("\nratios (same run):\n")
	fmt.Printf("  signed-in / no middleware   %.3f\n", med["signed"]/med["none"])
	fmt.Printf("  signed-in / do-nothing      %.3f\n", med["signed"]/med["noop"])
	fmt.Printf("  public    / no middleware   %.3f\n", med["public"]/med["none"])
	fmt.Printf("  public    / do-nothing      %.3f\n", med["public"]/med["noop"])
	fmt.Printf("  do-nothing / no middleware  %.3f\n", med["noop"]/med["none"])
	fmt.Printf("  floor     / no middleware   %.3f  (the contract's header work alone)\n", med["floor"]/med["none"])
	fmt.Printf("  signed-in / floor           %.3f\n", med["signed"]/med["floor"])
	fmt.Printf("\nTraefik resident memory after the run: %.1f MiB with traefik-authkit, %.1f MiB with only the do-nothing plugin (difference %.1f MiB)\n",
		fullRSS, floorRSS, fullRSS-floorRSS)
	if n := missingIdentity.Load(); n > 0 {
		return fmt.Errorf("%d signed-in requests reached the upstream without identity", n)
	}
	return nil
}

// sessionCookie signs Alice in at the fake and seals her session the way
// the plugin does.
func sessionCookie(fake *fakeworkos.Server) (string, error) {
	issued, err := fake.IssueSession(fakeworkos.SessionParams{UserID: fakeworkos.UserAlice, OrganizationID: fakeworkos.OrgAcme})
	if err != nil {
		return "", err
	}
	var user map[string]any
	if err := json.Unmarshal(issued.User, &user); err != nil {
		return "", err
	}
	payload, _ := json.Marshal(map[string]any{
		"accessToken": issued.AccessToken, "refreshToken": issued.RefreshToken,
		"user": map[string]any{"object": "user", "id": user["id"], "email": user["email"]},
	})
	keyring, err := authkit.NewKeyring(map[string]string{"1": cookiePassword})
	if err != nil {
		return "", err
	}
	sealed, err := keyring.Seal(payload, 0, time.Now())
	return "wos-session=" + sealed, err
}

// authKitConfig is traefik-authkit's configuration for the run.
func authKitConfig(api string, fake *fakeworkos.Server) map[string]any {
	u, _ := url.Parse(api)
	return map[string]any{
		"clientId": fake.ClientID(), "apiKey": fake.APIKey(), "cookiePassword": cookiePassword,
		"redirectUri": "/callback", "apiHostname": u.Hostname(), "apiHttps": "false", "apiPort": u.Port(),
		"middlewareAuth": map[string]any{"enabled": true, "unauthenticatedPaths": []string{"/public/:path*"}},
	}
}

// upstreamIdentity runs the compiled plugin once with the session cookie
// and returns the headers it sends upstream (but X-Url, which the floor
// plugin builds per request), so the floor plugin writes the same ones.
func upstreamIdentity(config map[string]any, cookie string) (map[string]string, error) {
	cfg := authkit.CreateConfig()
	raw, _ := json.Marshal(config)
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, err
	}
	headers := map[string]string{}
	h, err := authkit.New(context.Background(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, values := range r.Header {
			if (strings.HasPrefix(name, "X-Workos-") || name == "X-Redirect-Uri") && len(values) == 1 {
				headers[name] = values[0]
			}
		}
	}), cfg, "identity")
	if err != nil {
		return nil, err
	}
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/signed/x", nil)
	r.Header.Set("Cookie", cookie)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if headers["X-Workos-User-Id"] == "" {
		return nil, fmt.Errorf("the plugin did not sign the benchmark session in")
	}
	return headers, nil
}

// dynamicConfig routes /none and /noop and, given traefik-authkit's
// configuration, /floor, /signed and /public to the upstream.
func dynamicConfig(upstream string, authKit map[string]any, floorHeaders map[string]string) map[string]any {
	routers := map[string]any{
		"none": map[string]any{"rule": "PathPrefix(`/none`)", "service": "app"},
		"noop": map[string]any{"rule": "PathPrefix(`/noop`)", "service": "app", "middlewares": []string{"noop"}},
	}
	middlewares := map[string]any{"noop": map[string]any{"plugin": map[string]any{"noop": map[string]any{}}}}
	if authKit != nil {
		routers["floor"] = map[string]any{"rule": "PathPrefix(`/floor`)", "service": "app", "middlewares": []string{"floor"}}
		routers["signed"] = map[string]any{"rule": "PathPrefix(`/signed`)", "service": "app", "middlewares": []string{"authkit"}}
		routers["public"] = map[string]any{"rule": "PathPrefix(`/public`)", "service": "app", "middlewares": []string{"authkit"}}
		middlewares["authkit"] = map[string]any{"plugin": map[string]any{"authkit": authKit}}
		middlewares["floor"] = map[string]any{"plugin": map[string]any{"floor": map[string]any{
			"cookieName": "wos-session", "headers": floorHeaders,
		}}}
	}
	return map[string]any{"http": map[string]any{
		"routers":     routers,
		"middlewares": middlewares,
		"services":    map[string]any{"app": map[string]any{"loadBalancer": map[string]any{"servers": []any{map[string]any{"url": upstream}}}}},
	}}
}

type traefik struct {
	cmd    *exec.Cmd
	url    string
	apiURL string // Traefik's own entry point, with pprof when profiling
	dir    string
	stop   func()
}

func startTraefik(binary, root string, dynamic map[string]any) (*traefik, error) {
	dir, err := os.MkdirTemp("", "authkit-bench-")
	if err != nil {
		return nil, err
	}
	for module, src := range map[string]string{
		loader.ModuleName:                  root,
		"github.com/traefik-authkit/noop":  filepath.Join(root, "harness", "bench", "noop"),
		"github.com/traefik-authkit/floor": filepath.Join(root, "harness", "bench", "floor"),
	} {
		if err := loader.CopyPlugin(src, filepath.Join(dir, "plugins-local", "src", module)); err != nil {
			return nil, err
		}
	}
	port, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := traefiktest.FreePort()
	if err != nil {
		return nil, err
	}
	dyn, _ := json.Marshal(dynamic)
	if err := os.WriteFile(filepath.Join(dir, "dynamic.json"), dyn, 0o600); err != nil {
		return nil, err
	}
	static := fmt.Sprintf(`entryPoints:
  web:
    address: "127.0.0.1:%s"
  traefik:
    address: "127.0.0.1:%s"
api:
  insecure: true
  debug: %t
experimental:
  localPlugins:
    authkit:
      moduleName: %s
    noop:
      moduleName: github.com/traefik-authkit/noop
    floor:
      moduleName: github.com/traefik-authkit/floor
providers:
  file:
    filename: %s
log:
  level: ERROR
`, port, apiPort, profileDir != "", loader.ModuleName, filepath.Join(dir, "dynamic.json"))
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &traefik{cmd: cmd, url: "http://127.0.0.1:" + port, apiURL: "http://127.0.0.1:" + apiPort, dir: dir}
	t.stop = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(t.url + "/noop/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return t, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.stop()
	return nil, fmt.Errorf("Traefik did not route within a minute")
}

// cookieFor is the Cookie header of a target's requests: the signed-in
// session everywhere but on the public path, which anonymous visitors use.
func cookieFor(target, cookie string) string {
	if target == "public" {
		return ""
	}
	return cookie
}

// check makes sure a target answers 200 before it is measured, so a
// misconfiguration is not benchmarked as a fast error page.
func check(target, cookie string) error {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// saveProfile records Traefik's CPU for most of one wrk round.
func saveProfile(apiURL, file string, duration time.Duration) error {
	seconds := int(duration.Seconds()) - 1
	if seconds < 1 {
		seconds = 1
	}
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", apiURL, seconds))
	if err != nil {
		return fmt.Errorf("profile: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: status %d", resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

var requestsPerSecond = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func wrk(target, cookie string, duration time.Duration, connections int) (float64, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(connections), "-d" + duration.String(), "-H", "Accept: text/html"}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	out, err := exec.Command("wrk", append(args, target)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return 0, fmt.Errorf("wrk saw non-2xx answers from %s:\n%s", target, out)
	}
	m := requestsPerSecond.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func rssMiB(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}
