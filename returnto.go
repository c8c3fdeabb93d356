package authkit

import (
	"net/url"
	"strconv"
	"strings"
)

// Where the browser may be sent back to after a sign-in, a sign-out or an
// organization switch: a path on this site, or an origin the operator
// listed in returnOrigins (SPEC "Several sites, one callback"). Anything
// else falls back, so no parameter of a request can make the plugin
// redirect to a site of the attacker's choosing.

// returnOrigin is one returnOrigins entry: an exact origin, or a scheme
// and a domain whose direct subdomains are allowed ("https://*.example.com"
// allows https://app.example.com, not example.com nor a.b.example.com).
type returnOrigin struct {
	scheme string
	host   string // lower case, with the port when not the scheme's
	suffix string // ".example.com" for a wildcard, else ""
}

// parseReturnOrigins validates returnOrigins: every entry must be an
// origin the session cookie reaches, so the cookie domain must cover it.
func parseReturnOrigins(list []string, cookieDomain string) ([]returnOrigin, error) {
	if len(list) > 0 && cookieDomain == "" {
		return nil, configError("returnOrigins", "needs cookieDomain: the session cookie set at the callback must reach the other origins")
	}
	var out []returnOrigin
	for _, raw := range list {
		key := "returnOrigins " + strconv.Quote(raw)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, configError(key, "must be an origin such as https://app.example.com or https://*.example.com")
		}
		o := returnOrigin{scheme: u.Scheme, host: normalizedHost(u)}
		if strings.HasPrefix(o.host, "*.") {
			o.suffix = o.host[1:]
			if strings.Contains(o.suffix, "*") || strings.Count(o.suffix, ".") < 2 {
				return nil, configError(key, "may only start with *. before a domain of two labels or more")
			}
		} else if strings.Contains(o.host, "*") {
			return nil, configError(key, "may only use * as its first label")
		}
		if !domainCovers(cookieDomain, hostWithoutPort(o.host)) {
			return nil, configError(key, "is not under cookieDomain "+strconv.Quote(cookieDomain)+": the session cookie would not reach it")
		}
		out = append(out, o)
	}
	return out, nil
}

// normalizedHost is a URL's host in lower case, without the scheme's
// default port.
func normalizedHost(u *url.URL) string {
	host := strings.ToLower(u.Host)
	if (u.Scheme == "https" && strings.HasSuffix(host, ":443")) || (u.Scheme == "http" && strings.HasSuffix(host, ":80")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	return host
}

func hostWithoutPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		return host[:i]
	}
	return host
}

// domainCovers reports whether a cookie with Domain=domain reaches host
// (RFC 6265 domain matching; a leading dot is ignored, as browsers do).
func domainCovers(domain, host string) bool {
	domain = strings.ToLower(strings.TrimPrefix(domain, "."))
	host = strings.TrimPrefix(host, "*")
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// allowsOrigin reports whether an absolute URL's origin is one of the
// listed ones. A host with anything but ASCII letters, digits, '-', '.' and
// a port is refused: browsers map full-width and ideographic dots
// ("evil。example.com") and percent-escapes to '.', which would turn one
// label into two past the wildcard's one-level rule.
func allowsOrigin(origins []returnOrigin, u *url.URL) bool {
	if strings.Trim(strings.ToLower(u.Host), "abcdefghijklmnopqrstuvwxyz0123456789-.:") != "" {
		return false
	}
	host := normalizedHost(u)
	for _, o := range origins {
		if o.scheme != u.Scheme {
			continue
		}
		if o.suffix == "" && host == o.host {
			return true
		}
		if o.suffix != "" && strings.HasSuffix(host, o.suffix) {
			label := host[:len(host)-len(o.suffix)]
			if label != "" && !strings.ContainsAny(label, ".:") {
				return true
			}
		}
	}
	return false
}

// safeReturnTo keeps a return target when it stays on this site (a safe
// path) or goes to a listed origin (an absolute URL without userinfo,
// backslash or control character); anything else yields fallback.
func safeReturnTo(target, fallback string, origins []returnOrigin) string {
	if strings.HasPrefix(target, "/") {
		return safeReturnPath(target, fallback)
	}
	if len(origins) == 0 || strings.ContainsAny(target, "\\"+controlCharacters) {
		return fallback
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Opaque != "" || !allowsOrigin(origins, u) {
		return fallback
	}
	return target
}

// returnTargetFor makes a path on a listed origin absolute when the
// callback is on another origin, so the callback sends the browser back
// where the sign-in started (SPEC "Several sites, one callback"); anything
// else is kept as it is.
func returnTargetFor(a *authKit, ext external, target string) string {
	if strings.HasPrefix(target, "/") && a.callbackOrigin != "" && ext.origin != a.callbackOrigin &&
		safeReturnTo(ext.origin+target, "", a.s.returnOrigins) != "" {
		return ext.origin + target
	}
	return target
}

// originOf is an absolute URL's origin, "" for a path.
func originOf(target string) string {
	if strings.HasPrefix(target, "/") {
		return ""
	}
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + normalizedHost(u)
}

// safeReturnPath keeps a return path only when it stays on this site: it
// must be a single-slash absolute path with no scheme, host, backslash
// trick or control character; anything else yields fallback.
func safeReturnPath(p, fallback string) string {
	if !strings.HasPrefix(p, "/") {
		return fallback
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return fallback
	}
	if strings.ContainsAny(p, "\\"+controlCharacters) {
		return fallback
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	// Encoded slashes and backslashes decode in some servers' routers; a
	// path that starts with one after decoding is refused too.
	if decoded := u.Path; len(decoded) > 1 && (decoded[1] == '/' || decoded[1] == '\\') {
		return fallback
	}
	return p
}
