package authkit

import (
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestReadCookies(t *testing.T) {
	tests := []struct {
		name        string
		sessionName string
		cookie      string
		want        requestCookies
	}{
		{"session among others", "wos-session", "theme=dark; wos-session=S; lang=en",
			requestCookies{session: "S", sessionNames: sessionCookieNames{single: true}}},
		{"split session", "wos-session", "a=1; wos-session.1=B; wos-session.0=A",
			requestCookies{session: "AB", sessionNames: sessionCookieNames{chunks: 2}}},
		{"first of a repeated name wins", "wos-session", "wos-session=S1; wos-session=S2",
			requestCookies{session: "S1", sessionNames: sessionCookieNames{single: true}}},
		{"another session name, eager and PKCE cookies", "app-session",
			"theme=dark; app-session=S; workos-access-token=T; wos-auth-verifier-1a=x; wos-auth-verifier=y; wos-session=other",
			requestCookies{session: "S", sessionNames: sessionCookieNames{single: true}, eager: "T",
				pkceNames: []string{"wos-auth-verifier-1a", "wos-auth-verifier"}}},
		{"spaces and empty names", "wos-session", " ; =x;  wos-session = S ;",
			requestCookies{session: "S", sessionNames: sessionCookieNames{single: true}}},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://app.test/", nil)
		r.Header.Set("Cookie", tt.cookie)
		if got := readCookies(r.Header["Cookie"], tt.sessionName, readAll); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: readCookies = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
