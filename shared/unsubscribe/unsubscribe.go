// Package unsubscribe signs and verifies the opt-out tokens carried by the
// one-click unsubscribe links (RFC 8058) of non-transactional messages.
//
// A token names one client of one organisation and a channel, and expires.
// It is "v1.<payload>.<mac>": payload is the base64url (unpadded) JSON of
// Claims, mac the base64url HMAC-SHA256 of "v1." + payload under a key of at
// least MinKeyBytes. Verification accepts any of several keys, so a key can
// be rotated without breaking links already sent. Tokens carry ids only,
// never an address.
package unsubscribe

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dueflow/dueflow/shared/automation"
)

// MinKeyBytes is the shortest signing key accepted.
const MinKeyBytes = 32

// MaxTokenBytes bounds the token a verifier reads; longer input is rejected
// before any decoding.
const MaxTokenBytes = 1024

const version = "v1"

// Channel values a token may name.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Claims is what a token asserts: this client of this organisation opts out
// of this channel's non-transactional messages, until Expires.
type Claims struct {
	OrganizationID string    `json:"o"`
	ClientID       string    `json:"c"`
	Channel        string    `json:"ch"`
	Expires        time.Time `json:"-"`
}

type wire struct {
	OrganizationID string `json:"o"`
	ClientID       string `json:"c"`
	Channel        string `json:"ch"`
	Expires        int64  `json:"exp"`
}

// ErrInvalid is returned (wrapped) for every token that does not verify:
// malformed, unknown key, wrong MAC. ErrExpired for a valid but expired one.
// Both are *automation.Error with code unauthorized.
var (
	ErrInvalid = automation.NewError(automation.CodeUnauthorized, "unsubscribe token invalid", nil)
	ErrExpired = automation.NewError(automation.CodeUnauthorized, "unsubscribe token expired", nil)
)

// Sign returns the token for c under key. It fails for a short key, empty
// ids, an unknown channel or a zero expiry.
func Sign(key []byte, c Claims) (string, error) {
	if len(key) < MinKeyBytes {
		return "", fmt.Errorf("unsubscribe: key has %d bytes, want at least %d", len(key), MinKeyBytes)
	}
	if err := c.validate(); err != nil {
		return "", err
	}
	p, err := json.Marshal(wire{c.OrganizationID, c.ClientID, c.Channel, c.Expires.Unix()})
	if err != nil {
		return "", fmt.Errorf("unsubscribe: encode claims: %w", err)
	}
	signed := version + "." + base64.RawURLEncoding.EncodeToString(p)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(key, signed)), nil
}

// Verify checks token against each key in turn and returns its claims when
// one key's MAC matches and the token has not expired at now.
func Verify(keys [][]byte, token string, now time.Time) (Claims, error) {
	if len(token) == 0 || len(token) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: length %d", ErrInvalid, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != version {
		return Claims{}, fmt.Errorf("%w: format", ErrInvalid)
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: mac encoding", ErrInvalid)
	}
	signed := parts[0] + "." + parts[1]
	ok := false
	for _, k := range keys {
		if len(k) >= MinKeyBytes && hmac.Equal(got, mac(k, signed)) {
			ok = true
			break
		}
	}
	if !ok {
		return Claims{}, fmt.Errorf("%w: signature", ErrInvalid)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload encoding", ErrInvalid)
	}
	var w wire
	if err := json.Unmarshal(p, &w); err != nil {
		return Claims{}, fmt.Errorf("%w: payload", ErrInvalid)
	}
	c := Claims{OrganizationID: w.OrganizationID, ClientID: w.ClientID, Channel: w.Channel, Expires: time.Unix(w.Expires, 0).UTC()}
	if err := c.validate(); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !now.Before(c.Expires) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

func (c Claims) validate() error {
	switch {
	case c.OrganizationID == "" || c.ClientID == "":
		return errors.New("unsubscribe: organisation and client ids are required")
	case c.Channel != ChannelEmail && c.Channel != ChannelSMS:
		return fmt.Errorf("unsubscribe: channel %q, want %q or %q", c.Channel, ChannelEmail, ChannelSMS)
	case c.Expires.IsZero() || c.Expires.Unix() <= 0:
		return errors.New("unsubscribe: expiry is required")
	}
	return nil
}

func mac(key []byte, signed string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(signed))
	return h.Sum(nil)
}
