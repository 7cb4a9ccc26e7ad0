package unsubscribe_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dueflow/dueflow/shared/unsubscribe"
)

var (
	key1 = bytes.Repeat([]byte{1}, unsubscribe.MinKeyBytes)
	key2 = bytes.Repeat([]byte{2}, unsubscribe.MinKeyBytes)
	now  = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func claims() unsubscribe.Claims {
	return unsubscribe.Claims{OrganizationID: "org-1", ClientID: "client-7", Channel: unsubscribe.ChannelEmail, Expires: now.Add(time.Hour)}
}

func TestRoundTripAndRotation(t *testing.T) {
	tok, err := unsubscribe.Sign(key1, claims())
	require.NoError(t, err)
	require.NotContains(t, tok, "=")

	got, err := unsubscribe.Verify([][]byte{key2, key1}, tok, now)
	require.NoError(t, err)
	require.Equal(t, claims(), got)

	_, err = unsubscribe.Verify([][]byte{key2}, tok, now)
	require.ErrorIs(t, err, unsubscribe.ErrInvalid)
}

func TestExpired(t *testing.T) {
	tok, err := unsubscribe.Sign(key1, claims())
	require.NoError(t, err)
	_, err = unsubscribe.Verify([][]byte{key1}, tok, now.Add(time.Hour))
	require.ErrorIs(t, err, unsubscribe.ErrExpired)
}

func TestTamperedAndMalformed(t *testing.T) {
	tok, err := unsubscribe.Sign(key1, claims())
	require.NoError(t, err)
	other, err := unsubscribe.Sign(key1, unsubscribe.Claims{OrganizationID: "org-2", ClientID: "client-7", Channel: "email", Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	p := strings.Split(tok, ".")
	q := strings.Split(other, ".")
	for name, bad := range map[string]string{
		"swapped payload": p[0] + "." + q[1] + "." + p[2],
		"v2":              "v2." + p[1] + "." + p[2],
		"two parts":       p[0] + "." + p[1],
		"empty":           "",
		"huge":            strings.Repeat("a", unsubscribe.MaxTokenBytes+1),
		"bad base64":      p[0] + "." + p[1] + ".!!",
	} {
		_, err := unsubscribe.Verify([][]byte{key1}, bad, now)
		require.Truef(t, errors.Is(err, unsubscribe.ErrInvalid), "%s: %v", name, err)
	}
}

func TestSignRefusesBadInput(t *testing.T) {
	_, err := unsubscribe.Sign(key1[:8], claims())
	require.Error(t, err)
	c := claims()
	c.Channel = "fax"
	_, err = unsubscribe.Sign(key1, c)
	require.Error(t, err)
	c = claims()
	c.ClientID = ""
	_, err = unsubscribe.Sign(key1, c)
	require.Error(t, err)
	c = claims()
	c.Expires = time.Time{}
	_, err = unsubscribe.Sign(key1, c)
	require.Error(t, err)
}
