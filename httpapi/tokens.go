package httpapi

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
	"slices"
	"strings"

	"github.com/hourglass-io/hourglass/internal/atomicfile"
	"github.com/hourglass-io/hourglass/tsstore"
)

// DemoMerchant is the merchant whose token a new tokens file lists.
const DemoMerchant = "demo"

// tokenPrefix starts every merchant token.
const tokenPrefix = "hg_"

// merchantPattern is what a merchant id may be: it appears in tokens (between
// '_' separators) and as a label value.
var merchantPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$`)

// ValidateMerchant checks a merchant id: 1 to 64 of [a-zA-Z0-9.-], starting
// with a letter or digit. The error is of kind tsstore.ErrInvalid.
func ValidateMerchant(id string) error {
	if !merchantPattern.MatchString(id) {
		return tsstore.Errorf(tsstore.ErrInvalid, "%q is not 1 to 64 of [a-zA-Z0-9.-], starting with a letter or digit", id)
	}
	return nil
}

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

// TokenFile verifies merchant and admin tokens against a tokens file (JSON,
// mode 0600): a merchant token is "hg_<merchant>_<signature>", the
// signature an HMAC-SHA256 of the merchant id under the file's secret, so
// a token is valid by its signature and every server sharing the file
// accepts it; rotating the secret revokes every token. Safe for concurrent
// use (it is immutable).
type TokenFile struct {
	secret []byte
	admin  string
	file   tokenFile
}

var _ Tokens = (*TokenFile)(nil)

// OpenTokenFile reads the tokens file at path, creating it (mode 0600, with
// a new secret, admin token and the token of DemoMerchant) when it does not
// exist. created reports that it was created.
func OpenTokenFile(path string) (t *TokenFile, created bool, err error) {
	b, err := os.ReadFile(path)
	var f tokenFile
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f.Secret = randomHex(32)
		f.Admin = "hga_" + randomHex(24)
		t = &TokenFile{file: f}
		t.secret, _ = hex.DecodeString(f.Secret)
		t.admin = f.Admin
		t.file.Merchants = map[string]string{DemoMerchant: t.token(DemoMerchant)}
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
	return &TokenFile{secret: secret, admin: f.Admin, file: f}, false, nil
}

// writeTokenFile writes f to path atomically and durably, with mode 0600
// (atomicfile.Write).
func writeTokenFile(path string, f *tokenFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// MerchantToken returns the token of merchant: hg_<merchant>_<signature>.
// Issuing it twice gives the same token. An invalid merchant id is an
// error of ValidateMerchant.
func (t *TokenFile) MerchantToken(merchant string) (string, error) {
	if err := ValidateMerchant(merchant); err != nil {
		return "", err
	}
	return t.token(merchant), nil
}

// AdminToken returns the admin token.
func (t *TokenFile) AdminToken() string { return t.admin }

// ClusterSecret returns a copy of the file's secret, which the servers of
// a cluster share: writeback/peerhttp derives the token of their internal
// endpoint from it (a different HMAC label than any merchant id, so no
// merchant token can open it).
func (t *TokenFile) ClusterSecret() []byte { return slices.Clone(t.secret) }

func (t *TokenFile) token(merchant string) string {
	return tokenPrefix + merchant + "_" + t.sign(merchant)
}

func (t *TokenFile) sign(merchant string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(merchant))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// Merchant returns the merchant a token is bound to, or ok false when the
// token is not valid. The signature is compared in constant time.
func (t *TokenFile) Merchant(token string) (merchant string, ok bool) {
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

// IsAdmin reports whether token is the admin token, in constant time.
func (t *TokenFile) IsAdmin(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(t.admin)) == 1
}
