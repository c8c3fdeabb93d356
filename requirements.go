package authkit

// requirements are the per-middleware authorization rules (SPEC.md
// "Authorization requirements"), checked against a signed-in principal.
type requirements struct {
	permissions   []string // all of them
	roles         []string // any of them, from role or roles
	organizations []string // org_id must be one of them
	entitlements  []string // all of them
	featureFlags  []string // all of them
}

// any reports whether a rule is configured; then every non-public path
// needs a signed-in user even without middlewareAuth.
func (q *requirements) any() bool {
	return len(q.permissions)+len(q.roles)+len(q.organizations)+len(q.entitlements)+len(q.featureFlags) > 0
}

// unmet names the first requirement a principal does not satisfy, or "";
// parts are the principal's, split (principalParts), which the fast path
// also sets its headers from.
func (q *requirements) unmet(parts []string) string {
	if !hasAll(parts[fieldPermissions], q.permissions) {
		return "permissions"
	}
	if len(q.roles) > 0 && !containsString(q.roles, parts[fieldRole]) && !hasAny(parts[fieldRoles], q.roles) {
		return "roles"
	}
	if len(q.organizations) > 0 && !containsString(q.organizations, parts[fieldOrganizationID]) {
		return "organization"
	}
	if !hasAll(parts[fieldEntitlements], q.entitlements) {
		return "entitlements"
	}
	if !hasAll(parts[fieldFeatureFlags], q.featureFlags) {
		return "feature_flags"
	}
	return ""
}

func containsString(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// hasAll reports whether a comma-joined claim list holds every item.
func hasAll(list string, want []string) bool {
	for _, w := range want {
		if !hasListItem(list, w) {
			return false
		}
	}
	return true
}

// hasAny reports whether a comma-joined claim list holds one of the items.
func hasAny(list string, want []string) bool {
	for _, w := range want {
		if hasListItem(list, w) {
			return true
		}
	}
	return false
}
