package sms

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestAlphabet(t *testing.T) {
	// 128 code points minus the escape code; each character once.
	assert.Equal(t, 127, utf8.RuneCountInString(gsmBasic))
	seen := map[rune]bool{}
	for _, r := range gsmBasic + gsmExtension {
		assert.False(t, seen[r], "%q twice", r)
		seen[r] = true
	}
	for _, r := range gsmBasic {
		assert.Equal(t, Length{GSM7, 1, 1}, Measure(string(r)), "%q", r)
	}
	for _, r := range gsmExtension {
		assert.Equal(t, Length{GSM7, 2, 1}, Measure(string(r)), "%q", r)
	}
	// Look-alikes outside the alphabet.
	for _, s := range []string{"`", "ç", "’", "“", "…", "–", "\t", "\u00a0", "á", "ж", "中", "😀", "\xff"} {
		assert.Equal(t, UCS2, Measure(s).Encoding, "%q", s)
	}
}

func TestMeasure(t *testing.T) {
	a, zh, euro, emoji := "a", "ж", "€", "😀"
	cases := []struct {
		name string
		text string
		want Length
	}{
		{"empty", "", Length{GSM7, 0, 0}},
		{"gsm single at limit", strings.Repeat(a, 160), Length{GSM7, 160, 1}},
		{"gsm single past limit", strings.Repeat(a, 161), Length{GSM7, 161, 2}},
		{"gsm two segments at limit", strings.Repeat(a, 306), Length{GSM7, 306, 2}},
		{"gsm two segments past limit", strings.Repeat(a, 307), Length{GSM7, 307, 3}},
		{"gsm ten segments at limit", strings.Repeat(a, 1530), Length{GSM7, 1530, 10}},
		{"gsm ten segments past limit", strings.Repeat(a, 1531), Length{GSM7, 1531, 11}},
		{"extension counts two: at limit", strings.Repeat(euro, 80), Length{GSM7, 160, 1}},
		{"extension counts two: past limit", strings.Repeat(euro, 80) + a, Length{GSM7, 161, 2}},
		{"escape never split", strings.Repeat(a, 152) + euro + strings.Repeat(a, 152), Length{GSM7, 306, 3}},
		{"ucs2 single at limit", strings.Repeat(zh, 70), Length{UCS2, 70, 1}},
		{"ucs2 single past limit", strings.Repeat(zh, 71), Length{UCS2, 71, 2}},
		{"ucs2 two segments at limit", strings.Repeat(zh, 134), Length{UCS2, 134, 2}},
		{"ucs2 two segments past limit", strings.Repeat(zh, 135), Length{UCS2, 135, 3}},
		{"ucs2 ten segments at limit", strings.Repeat(zh, 670), Length{UCS2, 670, 10}},
		{"ucs2 ten segments past limit", strings.Repeat(zh, 671), Length{UCS2, 671, 11}},
		{"one curly quote makes it ucs2", "O’Brien" + strings.Repeat(a, 153), Length{UCS2, 160, 3}},
		{"emoji counts two: at limit", strings.Repeat(emoji, 35), Length{UCS2, 70, 1}},
		{"emoji counts two: past limit", strings.Repeat(emoji, 35) + a, Length{UCS2, 71, 2}},
		{"surrogate pair never split", strings.Repeat(a, 66) + emoji + strings.Repeat(a, 66), Length{UCS2, 134, 3}},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, Measure(tc.text), tc.name)
	}
}

// The example: a 1,559-character text in UCS-2 is 24 segments.
func TestLongUCS2Text(t *testing.T) {
	assert.Equal(t, Length{UCS2, 1559, 24}, Measure(strings.Repeat("ü’", 779)+"x"))
}

func FuzzMeasure(f *testing.F) {
	for _, s := range []string{"", "hello", "€€", "ж", "😀a", strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := Measure(s)
		single, part := GSM7Single, GSM7Part
		if l.Encoding == UCS2 {
			single, part = UCS2Single, UCS2Part
		}
		switch {
		case l.Units == 0 && l.Segments != 0, l.Units > 0 && l.Units <= single && l.Segments != 1:
			t.Fatalf("%q: %+v", s, l)
		case l.Units > single && (l.Segments < (l.Units+part-1)/part || l.Segments > (l.Units+part-1)/part+l.Units/part):
			t.Fatalf("%q: %+v", s, l)
		}
	})
}
