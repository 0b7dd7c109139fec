// Package redact is Manta's one way to keep secrets out of logs, errors
// and status pages: the password of a URL's userinfo, the values of
// secret-named query parameters (password, token, secret, key, access_key,
// X-Amz-Signature, X-Amz-Credential, ...), secret-named key=value pairs and
// Bearer/Basic credentials in free text. Every package that prints a URL,
// a DSN or an error that may hold one goes through URL or Text (ops'
// logger through its RedactAttr, the router's Redis URL, the store URL in
// modelhost.OpenStore's errors).
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Redacted replaces a secret.
const Redacted = "[REDACTED]"

// secretKeys are attribute and query parameter names whose values are
// secrets (compared case-insensitively, "-", "_" and "." ignored).
var secretKeys = map[string]bool{
	"password": true, "passwd": true, "pass": true, "pwd": true, "secret": true, "secretkey": true,
	"token": true, "accesstoken": true, "refreshtoken": true, "sessiontoken": true, "idtoken": true,
	"apikey": true, "accesskey": true, "authorization": true, "auth": true, "credential": true,
	"credentials": true, "privatekey": true, "clientsecret": true, "cookie": true, "setcookie": true,
	"xamzsignature": true, "xamzcredential": true, "xamzsecuritytoken": true, "signature": true, "sig": true,
	"awssecretaccesskey": true, "awssessiontoken": true, "mantas3secretkey": true, "mantas3sessiontoken": true,
	"miniorootpassword": true, "requirepass": true,
}

// fold lower-cases name and drops "-", "_" and ".".
func fold(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '_' || r == '.':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, name)
}

// IsSecretKey reports whether a name (an attribute, an environment
// variable, a query parameter) holds a secret: password, token, secret,
// api_key, access_key, authorization, X-Amz-Signature,
// AWS_SECRET_ACCESS_KEY, ...
func IsSecretKey(name string) bool {
	k := fold(name)
	if secretKeys[k] {
		return true
	}
	for _, suffix := range []string{"password", "secret", "secretkey", "token", "apikey", "accesskey", "signature", "credential"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// isSecretParam is IsSecretKey for a URL's query parameters, where a bare
// "key" is an API key too (?key=…); as a log attribute "key" is usually an
// object or cache key, so IsSecretKey leaves it.
func isSecretParam(name string) bool {
	return IsSecretKey(name) || fold(name) == "key"
}

var (
	// scheme://user:password@host in free text (the password may be empty
	// only if the user is not: redis://:pass@host is the common form).
	urlWithPassword = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/@]*):([^\s/@]+)@`)
	// Bearer and Basic credentials.
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`)
	// key=value and "key": "value" pairs whose key names a secret.
	secretPair = regexp.MustCompile(`(?i)([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|signature|credential)[A-Za-z0-9_.-]*)(["']?\s*[=:]\s*["']?)([^\s&"',;}]+)`)
)

// Text removes secrets from free text (an error message, a URL, a command
// line): the password of scheme://user:password@host URLs, the values of
// secret-named query parameters and key=value / "key": "value" pairs
// (password, token, secret, api_key, access_key, X-Amz-Signature, ...),
// and Bearer/Basic credentials. Other text is left as it is.
func Text(s string) string {
	if s == "" {
		return s
	}
	if strings.Contains(s, "://") {
		s = urlWithPassword.ReplaceAllString(s, "${1}${2}:"+Redacted+"@")
	}
	s = authScheme.ReplaceAllString(s, "${1} "+Redacted)
	s = secretPair.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretPair.FindStringSubmatch(m)
		if sub[3] == Redacted {
			return m
		}
		return sub[1] + sub[2] + Redacted
	})
	return s
}

// URL returns u (a URL or a DSN) with the password of its userinfo and the
// values of its secret-named query parameters replaced by Redacted; the
// rest keeps its spelling. The query is rewritten pair by pair, so a pair
// the standard parser refuses (a ";", a bad escape) is still redacted, not
// dropped or passed through; the fragment is redacted as a query too. An opaque URL with an "@" (a DSN such as
// user:password@tcp(host)/db) loses what comes before its last "@". A
// string that does not parse as a URL with a scheme goes through Text.
func URL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return Text(u)
	}
	if i := strings.LastIndexByte(p.Opaque, '@'); i >= 0 {
		p.Opaque = Redacted + p.Opaque[i:]
	}
	_, hasPassword := p.User.Password()
	if hasPassword {
		p.User = url.UserPassword(p.User.Username(), Redacted)
	}
	p.RawQuery = query(p.RawQuery)
	// The fragment as written: EscapedFragment re-escapes the decoded one,
	// turning an escaped separator (%3B) into a raw ";" that would split a
	// secret value in two (half of it left in clear).
	fragment := ""
	if i := strings.IndexByte(u, '#'); i >= 0 && p.Fragment != "" {
		fragment = u[i+1:]
	}
	p.Fragment, p.RawFragment = "", ""
	s := p.String()
	if fragment != "" {
		// a fragment may carry a query too (OAuth's #access_token=…)
		s += "#" + Text(query(fragment))
	}
	if hasPassword {
		// String escapes the marker's brackets in the userinfo; it reads
		// better as it is.
		s = strings.Replace(s, url.PathEscape(Redacted)+"@", Redacted+"@", 1)
	}
	return s
}

// query redacts the values of the secret-named parameters of a raw query
// ("&" or ";" separated), keeping every other byte as it is.
func query(raw string) string {
	if raw == "" {
		return raw
	}
	var b strings.Builder
	start := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '&' && raw[i] != ';' {
			continue
		}
		pair := raw[start:i]
		key, _, hasValue := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(key)
		if err != nil {
			name = key
		}
		if hasValue && isSecretParam(name) {
			b.WriteString(key + "=" + Redacted)
		} else {
			b.WriteString(pair)
		}
		if i < len(raw) {
			b.WriteByte(raw[i])
		}
		start = i + 1
	}
	return b.String()
}
