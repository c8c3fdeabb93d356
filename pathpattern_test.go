package authkit

import (
	"strconv"
	"strings"
	"testing"
)

// pathPatternMatchCases hold path-to-regexp v6.3.0's answers for
// pathToRegexp(pattern).test(path) with default options.
var pathPatternMatchCases = []struct {
	name    string
	pattern string
	path    string
	want    bool
}{
	{"literal matches itself", "/about", "/about", true},
	{"literal rejects another path", "/about", "/contact", false},
	{"literal covers the whole path", "/about", "/about/team", false},
	{"literal is not a prefix", "/about", "/aboutus", false},
	{"literal ignores case", "/About", "/aBOUT", true},
	{"literal ignores case of non-ASCII letters", "/café", "/CAFÉ", true},
	{"one trailing slash is optional", "/about", "/about/", true},
	{"two trailing slashes are not", "/about", "/about//", false},
	{"trailing hash counts as a delimiter", "/about", "/about#", true},
	{"slash at the end of the pattern is required", "/about/", "/about", false},
	{"root matches root", "/", "/", true},
	{"root rejects empty path", "/", "", false},
	{"empty pattern matches root", "", "/", true},
	{"query string is not part of the path", "/search", "/search?q=1", false},
	{"bare question mark is a trailing delimiter", "/search", "/search?", true},

	{"param matches one segment", "/users/:id", "/users/42", true},
	{"param is required", "/users/:id", "/users", false},
	{"param does not match an empty segment", "/users/:id", "/users/", false},
	{"param does not span segments", "/users/:id", "/users/42/posts", false},
	{"param allows a trailing slash", "/users/:id", "/users/42/", true},
	{"param does not match a hash", "/users/:id", "/users/4#2", false},

	{"optional param absent", "/users/:id?", "/users", true},
	{"optional param present", "/users/:id?", "/users/42", true},
	{"optional param takes its slash along", "/users/:id?", "/users/", true},
	{"optional param is still one segment", "/users/:id?", "/users/42/posts", false},

	{"zero or more params: none", "/docs/:path*", "/docs", true},
	{"zero or more params: several", "/docs/:path*", "/docs/a/b/c", true},
	{"zero or more params: trailing slash", "/docs/:path*", "/docs/a/b/", true},
	{"zero or more params: no empty segment", "/docs/:path*", "/docs//a", false},
	{"zero or more params: literal stays whole", "/docs/:path*", "/docsx", false},
	{"zero or more params at the root", "/:path*", "/", true},

	{"one or more params: none", "/docs/:path+", "/docs", false},
	{"one or more params: one", "/docs/:path+", "/docs/a", true},
	{"one or more params: several", "/docs/:path+", "/docs/a/b", true},

	{"wildcard group matches the rest", "/api/(.*)", "/api/v1/users", true},
	{"wildcard group matches an empty rest", "/api/(.*)", "/api/", true},
	{"wildcard group needs its slash", "/api/(.*)", "/api", false},
	{"wildcard group keeps the literal whole", "/api/(.*)", "/apix", false},
	{"wildcard group spans delimiters", "/api/(.*)", "/api/a?b#c", true},
	{"wildcard group stops at a line break", "/api/(.*)", "/api/a\nb", false},
	{"wildcard group at the root", "/(.*)", "/anything", true},
	{"optional wildcard group", "/api/(.*)?", "/api", true},

	{"custom pattern matches", "/api/:v(\\d+)/x", "/api/2/x", true},
	{"custom pattern matches several characters", "/api/:v(\\d+)/x", "/api/22/x", true},
	{"custom pattern rejects", "/api/:v(\\d+)/x", "/api/v2/x", false},
	{"custom pattern alternation", "/:lang(en|fr)/docs", "/FR/docs", true},
	{"custom pattern unicode escape", "/(\\u0041+)", "/aaa", true},
	{"custom pattern white space class", "/a(\\s)b", "/a\u00a0b", true},
	{"custom pattern named group", "/((?<v>\\d+))", "/12", true},

	{"optional group absent", "/files{/:name}?", "/files", true},
	{"optional group present", "/files{/:name}?", "/files/a", true},
	{"optional group is one segment", "/files{/:name}?", "/files/a/b", false},
	{"optional group keeps its prefix", "/files{/:name}?", "/filesa", false},
	{"group with prefix and suffix present", "/icon{-:size(\\d+)px}?", "/icon-32px", true},
	{"group with prefix and suffix absent", "/icon{-:size(\\d+)px}?", "/icon", true},
	{"group suffix is required with the value", "/icon{-:size(\\d+)px}?", "/icon-32", false},
	{"repeated group joins with prefix and suffix", "/t{/:tag;}+", "/t/a;/b;", true},
	{"text-only group is optional text", "/docs{/latest}?", "/docs/latest", true},

	{"params split on text", "/:from-:to", "/paris-rome", true},
	{"params need their separator", "/:from-:to", "/paris", false},
	{"second param excludes the separator", "/:from-:to", "/a-b-c", true},
	{"second param cannot be empty", "/:from-:to", "/a-", false},
	{"dot prefix folds into the param", "/:file.:ext?", "/archive", true},
	{"dot prefixed param present", "/:file.:ext?", "/archive.tar.gz", true},

	{"escaped colon is literal", "/a\\:b", "/a:b", true},
	{"escaped question mark is literal", "/what\\?/x", "/what?/x", true},
	{"escaped question mark is required", "/what\\?/x", "/what/x", false},
	{"escaped parentheses are literal", "/\\(x\\)", "/(x)", true},
	{"escaped plus is literal", "/c\\+\\+", "/c++", true},
	{"escaped plus is not a quantifier", "/c\\+\\+", "/cc", false},

	{"dot is literal", "/file.txt", "/file.txt", true},
	{"dot is not a wildcard", "/file.txt", "/fileXtxt", false},
	{"regexp characters are literal", "/$a^b|c[d]", "/$a^b|c[d]", true},

	{"non-ASCII literal", "/café", "/café", true},
	{"encoded literal ignores hex case", "/caf%C3%A9", "/caf%c3%a9", true},
	{"encoded path is not decoded", "/café", "/caf%C3%A9", false},
	{"param matches an encoded segment", "/tags/:tag", "/tags/%E2%9C%93", true},
	{"param matches a non-ASCII segment", "/tags/:tag", "/tags/✓", true},
}

func TestPathPatternMatch(t *testing.T) {
	for _, tc := range pathPatternMatchCases {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			p, err := compilePathPattern(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.match(tc.path); got != tc.want {
				t.Errorf("%q match %q = %v, want %v", tc.pattern, tc.path, got, tc.want)
			}
		})
	}
}

func TestCompilePathPatternErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    string
	}{
		{"missing parameter name", "/users/:", "missing parameter name"},
		{"unbalanced custom pattern", "/(\\d+", "unbalanced"},
		{"capturing group in a custom pattern", "/((\\d+))", "capturing groups are not allowed"},
		{"custom pattern starting with a question mark", "/(?:x)", "cannot start with"},
		{"empty custom pattern", "/()", "missing custom pattern"},
		{"unterminated group", "/files{/:name", `expected "}"`},
		{"stray closing brace", "/files}", `unexpected "}"`},
		{"nested group", "/a{b{c}}", `unexpected "{"`},
		{"modifier without a parameter", "/api/*", `unexpected "*"`},
		{"parameters without text between them", "/:a:b", "must have text between two parameters"},
		{"repeat without prefix or suffix", "/x-:a+", "cannot repeat"},
		{"lookahead", "/((?!api|_next).*)", "lookahead"},
		{"lookbehind", "/(.*(?<!\\.js))", "lookbehind"},
		{"backreference", "/(a\\1)", "backreference"},
		{"repeated group name", "/((?<x>a))/((?<x>b))", "duplicate group name"},
		{"invalid custom pattern", "/([a-)", `custom pattern "[a-"`},
		{"repeated assertion", "/(a$*)", "nothing to repeat"},
		{"trailing backslash", "/a\\", "nothing to escape"},
		{"several characters between parameters", "/:a-to-:b", "lookahead"},
		{"invalid UTF-8", "/\xff", "UTF-8"},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			_, err := compilePathPattern(tc.pattern)
			if err == nil {
				t.Fatalf("%q compiled", tc.pattern)
			}
			msg := err.Error()
			if !strings.Contains(msg, strconv.Quote(tc.pattern)) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want the pattern and %q", msg, tc.want)
			}
		})
	}
}

// TestPathPatternsCombined checks that one list holding every pattern of
// pathPatternMatchCases answers each path as its patterns do one by one.
func TestPathPatternsCombined(t *testing.T) {
	var sources []string
	var patterns []*pathPattern
	for _, tc := range pathPatternMatchCases {
		p, err := compilePathPattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, tc.pattern)
		patterns = append(patterns, p)
	}
	ps, err := compilePathPatterns(sources)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range pathPatternMatchCases {
		want := false
		for _, p := range patterns {
			want = want || p.match(tc.path)
		}
		if got := ps.matchAny(tc.path); got != want {
			t.Errorf("%s: matchAny(%q) = %v, patterns one by one say %v", tc.name, tc.path, got, want)
		}
	}
}

func TestPathPatternsMatchAny(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		path     string
		want     bool
	}{
		{"empty list matches nothing", nil, "/", false},
		{"first pattern matches", []string{"/a", "/b"}, "/a", true},
		{"last pattern matches", []string{"/a", "/b/:id"}, "/b/1", true},
		{"no pattern matches", []string{"/a", "/b/:id"}, "/c", false},
		{"empty entries are skipped", []string{"", "/a", ""}, "", false},
		{"blank entries are skipped", []string{" ", "\t"}, "", false},
		{"entries are trimmed", []string{" /a ", "\t/b"}, "/b", true},
	}
	for _, tc := range tests {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			ps, err := compilePathPatterns(tc.patterns)
			if err != nil {
				t.Fatal(err)
			}
			if got := ps.matchAny(tc.path); got != tc.want {
				t.Errorf("matchAny(%q) = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func TestCompilePathPatternsEmpty(t *testing.T) {
	for _, list := range [][]string{nil, {"", " ", "\t"}} {
		ps, err := compilePathPatterns(list)
		if err != nil || len(ps) != 0 {
			t.Errorf("compilePathPatterns(%q) = %d elements, %v; want none", list, len(ps), err)
		}
	}
}

func TestCompilePathPatternsError(t *testing.T) {
	_, err := compilePathPatterns([]string{"/ok", "/bad:"})
	if err == nil || !strings.Contains(err.Error(), `"/bad:"`) {
		t.Errorf("error %v, want one naming \"/bad:\"", err)
	}
}

func BenchmarkPathPatternsMatchAny(b *testing.B) {
	benchmarks := []struct {
		name     string
		patterns string // comma-separated, as configuration may give them
		path     string
		want     bool
	}{
		{"literal", "/about", "/About/", true},
		{"prefix", "/api/(.*)", "/api/v1/users/42", true},
		{"param", "/users/:id", "/users/42", true},
		{"list", "/,/about,/pricing,/blog/:slug,/api/public/(.*),/docs/:path*", "/dashboard/settings", false},
	}
	for _, bm := range benchmarks {
		bm := bm
		ps, err := compilePathPatterns(strings.Split(bm.patterns, ","))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if ps.matchAny(bm.path) != bm.want {
					b.Fatal("unexpected answer")
				}
			}
		})
	}
}
