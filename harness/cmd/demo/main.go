// Command demo runs a local stack where a person can sign in with a browser:
// Traefik with the plugin, in front of a page that shows what the upstream
// received, against a built-in fake WorkOS (or the real one when the
// WORKOS_* variables are set). Everything listens on 127.0.0.1.
//
// It runs the real Traefik v3.6.12 when harness/build-traefik.sh has built
// it, and otherwise loads the plugin into yaegi with the same loader the
// tests use, which is what Traefik does with a plugin.
//
//	./scripts/demo.sh            # from the repository root
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/traefik-authkit/authkit/harness/loader"
	"github.com/traefik-authkit/authkit/harness/traefiktest"
	"github.com/traefik-authkit/authkit/internal/fakeworkos"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address the stack serves on")
	mode := flag.String("traefik", "auto", "auto: real Traefik when built, else the loader; real; loader")
	flag.Parse()
	if err := run(*addr, *mode); err != nil {
		log.Fatal("demo: ", err)
	}
}

func run(addr, mode string) error {
	root, err := loader.RepoRoot()
	if err != nil {
		return err
	}
	example, err := readExample(root)
	if err != nil {
		return err
	}
	upstream, err := serveUpstream(identityHeaderNames(example))
	if err != nil {
		return err
	}
	os.Setenv("AUTHKIT_UPSTREAM_URL", upstream)
	workos := "your WorkOS environment"
	if !realWorkOS() {
		stop, err := startFakeWorkOS(addr)
		if err != nil {
			return err
		}
		defer stop()
		workos = "the built-in fake WorkOS (pick any test user)"
	}

	binary, built := traefikBinary()
	useTraefik := mode == "real" || (mode == "auto" && built)
	var stop func()
	if useTraefik {
		if !built {
			return errors.New("Traefik is not built: run harness/build-traefik.sh")
		}
		stop, err = startTraefik(binary, root, addr)
	} else {
		stop, err = startLoader(root, addr, example)
	}
	if err != nil {
		return err
	}
	defer stop()

	runner := "real Traefik v3.6.12"
	if !useTraefik {
		runner = "the plugin in yaegi (harness/build-traefik.sh builds real Traefik; the demo uses it once built)"
	}
	fmt.Printf("\ntraefik-authkit demo: %s, signing in with %s.\n\n  Open http://%s/dashboard\n\nCtrl-C stops it.\n", runner, workos, addr)
	wait := make(chan os.Signal, 1)
	signal.Notify(wait, os.Interrupt, syscall.SIGTERM)
	<-wait
	return nil
}

// traefikBinary returns where the tests build Traefik and whether it is
// there yet.
func traefikBinary() (string, bool) {
	path, err := traefiktest.BinaryPath()
	if err != nil {
		return "", false
	}
	info, err := os.Stat(path)
	return path, err == nil && !info.IsDir()
}

// realWorkOS reports whether the user pointed the demo at a WorkOS
// environment of their own.
func realWorkOS() bool {
	for _, name := range []string{"WORKOS_CLIENT_ID", "WORKOS_API_KEY", "WORKOS_COOKIE_PASSWORD", "WORKOS_REDIRECT_URI"} {
		if os.Getenv(name) == "" {
			return false
		}
	}
	return true
}

// startFakeWorkOS serves the fake on a free loopback port and points the
// plugin at it through the same variables a real deployment uses.
func startFakeWorkOS(addr string) (func(), error) {
	fake := fakeworkos.New(fakeworkos.Options{})
	base, stop, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	password := make([]byte, 24)
	rand.Read(password)
	for name, value := range map[string]string{
		"WORKOS_CLIENT_ID": fake.ClientID(), "WORKOS_API_KEY": fake.APIKey(),
		"WORKOS_COOKIE_PASSWORD": hex.EncodeToString(password), "WORKOS_REDIRECT_URI": "http://" + addr + "/callback",
		"WORKOS_API_HOSTNAME": host, "WORKOS_API_HTTPS": "false", "WORKOS_API_PORT": port,
	} {
		os.Setenv(name, value)
	}
	return stop, nil
}

// startTraefik runs the real binary in local plugin mode with the
// repository's example configuration.
func startTraefik(binary, root, addr string) (func(), error) {
	dir, err := os.MkdirTemp("", "authkit-demo-")
	if err != nil {
		return nil, err
	}
	if err := loader.CopyPlugin(root, filepath.Join(dir, "plugins-local", "src", loader.ModuleName)); err != nil {
		return nil, err
	}
	static := fmt.Sprintf(`entryPoints:
  web:
    address: %q
experimental:
  localPlugins:
    authkit:
      moduleName: %s
providers:
  file:
    filename: %s
log:
  level: ERROR
`, addr, loader.ModuleName, filepath.Join(root, "examples", "dynamic.yml"))
	if err := os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
		os.RemoveAll(dir)
	}
	if err := waitReachable(addr); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// startLoader serves the plugin from yaegi in this process, one middleware
// per router of examples/dynamic.yml, each request going to the router
// with the longest matching PathPrefix, as Traefik would route it.
func startLoader(root, addr string, example *exampleConfig) (func(), error) {
	routes, err := exampleRoutes(example)
	if err != nil {
		return nil, err
	}
	upstream, err := newProxy(os.Getenv("AUTHKIT_UPSTREAM_URL"))
	if err != nil {
		return nil, err
	}
	plugin, err := loader.Cached(root)
	if err != nil {
		return nil, err
	}
	handlers := make([]http.Handler, len(routes))
	for i, rt := range routes {
		c, err := plugin.Build(rt.config, rt.middleware)
		if err != nil {
			return nil, err
		}
		if handlers[i], err = c(context.Background(), upstream); err != nil {
			return nil, fmt.Errorf("middleware %s: %w", rt.middleware, err)
		}
	}
	router := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i, rt := range routes {
			if strings.HasPrefix(r.URL.Path, rt.prefix) {
				handlers[i].ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

func waitReachable(addr string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("Traefik did not serve %s within a minute", addr)
}
