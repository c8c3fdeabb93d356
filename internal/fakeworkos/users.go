package fakeworkos

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Identifiers of the built-in test users and organizations. They look like
// WorkOS identifiers (prefix plus 26 ULID characters) so that code which
// logs or forwards them sees realistic values.
const (
	UserAlice = "user_01HZA1CEADM1N0000000000000"
	UserBob   = "user_01HZB0BMEMBER0000000000000"
	UserCarol = "user_01HZCAR0NN0RG0000000000000"
	UserZoe   = "user_01HZZ0EWN1C0DE000000000000"
	UserMax   = "user_01HZMAXB1GMETADATA00000000"

	OrgAcme   = "org_01HZACMEC0RP00000000000000"
	OrgGlobex = "org_01HZG10BEXC0RP000000000000"
)

// User is a person the fake can sign in. Each membership becomes one
// choice on the sign-in page and decides the role, permission, entitlement
// and feature-flag claims of sessions in that organization.
type User struct {
	ID                string
	Email             string
	EmailVerified     bool
	FirstName         string
	LastName          string
	ProfilePictureURL string
	Locale            string
	ExternalID        string
	// Metadata is WorkOS's free-form string map (at most 10 keys of 600
	// characters each in the real service).
	Metadata    map[string]string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Memberships []Membership
}

// Membership places a user in an organization.
type Membership struct {
	OrganizationID   string
	OrganizationName string
	// Role is the primary role slug (the "role" claim); Roles lists every
	// role (the "roles" claim) and defaults to just Role.
	Role         string
	Roles        []string
	Permissions  []string
	Entitlements []string
	FeatureFlags []string
}

// DefaultUsers returns a fresh copy of the built-in test users: an admin
// in two organizations, a plain member, a user without organization, a
// user with non-ASCII names and several roles, and a user whose ~6 KB
// metadata pushes a sealed session cookie towards the browser's limit.
func DefaultUsers() []User {
	joined := defaultCreatedAt()
	return []User{
		{
			ID: UserAlice, Email: "alice@example.com", EmailVerified: true,
			FirstName: "Alice", LastName: "Admin",
			ProfilePictureURL: "https://example.com/avatars/alice.png",
			Locale:            "en-US", ExternalID: "ext-alice-1",
			Metadata:  map[string]string{"timezone": "Europe/Paris"},
			CreatedAt: joined, UpdatedAt: joined,
			Memberships: []Membership{
				{
					OrganizationID: OrgAcme, OrganizationName: "Acme Corp",
					Role: "admin", Roles: []string{"admin", "member"},
					Permissions:  []string{"posts:read", "posts:write", "users:manage"},
					Entitlements: []string{"audit-logs", "sso"},
					FeatureFlags: []string{"new-dashboard", "beta-search"},
				},
				{
					OrganizationID: OrgGlobex, OrganizationName: "Globex",
					Role: "member", Permissions: []string{"posts:read"},
					Entitlements: []string{}, FeatureFlags: []string{"new-dashboard"},
				},
			},
		},
		{
			ID: UserBob, Email: "bob@example.com", EmailVerified: true,
			FirstName: "Bob", LastName: "Member",
			CreatedAt: joined, UpdatedAt: joined,
			Memberships: []Membership{{
				OrganizationID: OrgAcme, OrganizationName: "Acme Corp",
				Role: "member", Permissions: []string{"posts:read"},
				Entitlements: []string{"audit-logs"}, FeatureFlags: []string{},
			}},
		},
		{
			ID: UserCarol, Email: "carol@example.com", EmailVerified: false,
			FirstName: "Carol", LastName: "Solo",
			CreatedAt: joined, UpdatedAt: joined,
		},
		{
			ID: UserZoe, Email: "zoe@example.com", EmailVerified: true,
			FirstName: "Zoë", LastName: "Ångström-Nuñez", Locale: "sv-SE",
			Metadata:  map[string]string{"motto": "naïve café ☕ — 東京"},
			CreatedAt: joined, UpdatedAt: joined,
			Memberships: []Membership{{
				OrganizationID: OrgGlobex, OrganizationName: "Globex",
				Role: "billing", Roles: []string{"billing", "viewer"},
				Permissions:  []string{"invoices:read", "invoices:pay"},
				Entitlements: []string{"billing-portal"}, FeatureFlags: []string{"beta-search"},
			}},
		},
		{
			ID: UserMax, Email: "max@example.com", EmailVerified: true,
			FirstName: "Max", LastName: "Metadata",
			Metadata:  bigMetadata(),
			CreatedAt: joined, UpdatedAt: joined,
			Memberships: []Membership{{
				OrganizationID: OrgAcme, OrganizationName: "Acme Corp",
				Role: "member", Permissions: []string{"posts:read"},
				Entitlements: []string{}, FeatureFlags: []string{},
			}},
		},
	}
}

// bigMetadata fills WorkOS's metadata limit (10 keys × 600 characters).
// The values are hash chains rather than repeats so that nothing on the
// way (compression, deduplication) makes the cookie smaller than it is.
func bigMetadata() map[string]string {
	m := make(map[string]string, 10)
	for i := 0; i < 10; i++ {
		key := "note_" + string(rune('0'+i))
		var b strings.Builder
		seed := []byte(key)
		for b.Len() < 600 {
			sum := sha256.Sum256(seed)
			seed = sum[:]
			b.WriteString(hex.EncodeToString(seed))
		}
		m[key] = b.String()[:600]
	}
	return m
}

// apiUser is the snake_case user object of the WorkOS API (C.3). Optional
// strings are pointers because the API sends null, not "", for them.
type apiUser struct {
	Object            string            `json:"object"`
	ID                string            `json:"id"`
	Email             string            `json:"email"`
	EmailVerified     bool              `json:"email_verified"`
	FirstName         *string           `json:"first_name"`
	LastName          *string           `json:"last_name"`
	ProfilePictureURL *string           `json:"profile_picture_url"`
	LastSignInAt      *string           `json:"last_sign_in_at"`
	Locale            *string           `json:"locale"`
	CreatedAt         string            `json:"created_at"`
	UpdatedAt         string            `json:"updated_at"`
	ExternalID        *string           `json:"external_id"`
	Metadata          map[string]string `json:"metadata"`
}

// defaultCreatedAt stands in for a user's unset CreatedAt, so the API
// never shows the zero time.
func defaultCreatedAt() time.Time {
	return time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC)
}

// apiTime formats timestamps the way the WorkOS API does: UTC with
// milliseconds.
func apiTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toAPIUser(u User, lastSignIn time.Time) apiUser {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = defaultCreatedAt()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	out := apiUser{
		Object:            "user",
		ID:                u.ID,
		Email:             u.Email,
		EmailVerified:     u.EmailVerified,
		FirstName:         nullable(u.FirstName),
		LastName:          nullable(u.LastName),
		ProfilePictureURL: nullable(u.ProfilePictureURL),
		Locale:            nullable(u.Locale),
		CreatedAt:         apiTime(u.CreatedAt),
		UpdatedAt:         apiTime(u.UpdatedAt),
		ExternalID:        nullable(u.ExternalID),
		Metadata:          u.Metadata,
	}
	if !lastSignIn.IsZero() {
		out.LastSignInAt = nullable(apiTime(lastSignIn))
	}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	return out
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakeworkos: " + err.Error())
	}
	return b
}

// membership returns u's membership in orgID.
func (u User) membership(orgID string) (Membership, bool) {
	for i := 0; i < len(u.Memberships); i++ {
		if u.Memberships[i].OrganizationID == orgID {
			return u.Memberships[i], true
		}
	}
	return Membership{}, false
}

// defaultOrg is the organization a sign-in lands in when none was asked
// for: the first membership, as AuthKit does for single-org users.
func (u User) defaultOrg() string {
	if len(u.Memberships) == 0 {
		return ""
	}
	return u.Memberships[0].OrganizationID
}

func (u User) displayName() string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}
