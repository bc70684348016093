package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// demoMerchant is the merchant whose token a first start prints.
const demoMerchant = "demo"

// tokenPrefix starts every merchant token.
const tokenPrefix = "hg_"

// merchantPattern is what a merchant id may be: it appears in tokens (between
// '_' separators) and as a label value.
var merchantPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$`)

// tokenFile is the JSON content of the tokens file.
type tokenFile struct {
	// Secret signs merchant tokens (hex). Changing it revokes them all.
	Secret string `json:"secret"`
	// Admin is the admin token.
	Admin string `json:"admin_token"`
	// Merchants lists the tokens printed or issued so far, for reference;
	// a token is valid by its signature, not by being listed.
	Merchants map[string]string `json:"merchants,omitempty"`
}

// tokens verifies merchant and admin tokens. Safe for concurrent use (it is
// immutable).
type tokens struct {
	secret []byte
	admin  string
	file   tokenFile
}

// loadTokens reads the tokens file at path, creating it (mode 0600, with a new
// secret, admin token and a demo merchant token) when it does not exist.
// created reports that it was created.
func loadTokens(path string) (t *tokens, created bool, err error) {
	b, err := os.ReadFile(path)
	var f tokenFile
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.Secret = randomHex(32)
		f.Admin = "hga_" + randomHex(24)
		t = &tokens{file: f}
		t.secret, _ = hex.DecodeString(f.Secret)
		t.admin = f.Admin
		t.file.Merchants = map[string]string{demoMerchant: t.merchantToken(demoMerchant)}
		if err := writeTokenFile(path, &t.file); err != nil {
			return nil, false, err
		}
		return t, true, nil
	case err != nil:
		return nil, false, fmt.Errorf("tokens file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, false, fmt.Errorf("tokens file %s: %w", path, err)
	}
	secret, err := hex.DecodeString(f.Secret)
	if err != nil || len(secret) < 16 {
		return nil, false, fmt.Errorf("tokens file %s: secret must be at least 16 bytes in hex", path)
	}
	if len(f.Admin) < 16 {
		return nil, false, fmt.Errorf("tokens file %s: admin_token must be at least 16 characters", path)
	}
	return &tokens{secret: secret, admin: f.Admin, file: f}, false, nil
}

// writeTokenFile writes f to path atomically with mode 0600.
func writeTokenFile(path string, f *tokenFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// merchantToken returns the token of merchant: hg_<merchant>_<signature>.
func (t *tokens) merchantToken(merchant string) string {
	return tokenPrefix + merchant + "_" + t.sign(merchant)
}

func (t *tokens) sign(merchant string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(merchant))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// merchant returns the merchant a token is bound to, or ok false when the
// token is not valid. The signature is compared in constant time.
func (t *tokens) merchant(token string) (merchant string, ok bool) {
	rest, found := strings.CutPrefix(token, tokenPrefix)
	if !found {
		return "", false
	}
	i := strings.IndexByte(rest, '_') // merchant ids hold no '_'; signatures may
	if i <= 0 {
		return "", false
	}
	merchant, sig := rest[:i], rest[i+1:]
	if !merchantPattern.MatchString(merchant) {
		return "", false
	}
	if !hmac.Equal([]byte(sig), []byte(t.sign(merchant))) {
		return "", false
	}
	return merchant, true
}

// isAdmin reports whether token is the admin token, in constant time.
func (t *tokens) isAdmin(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(t.admin)) == 1
}
