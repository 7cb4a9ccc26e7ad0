package text_test

import (
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/shared/text"
)

func TestTruncate(t *testing.T) {
	assert.Equal(t, "short", text.Truncate("short", 5))
	assert.Equal(t, "abcd...", text.Truncate("abcdefghij", 7))
	assert.Equal(t, "ab", text.Truncate("abcdefghij", 2))
	assert.Equal(t, "", text.Truncate("abc", 0))
	// "é" is 2 bytes: a cut inside it drops the whole character.
	s := text.Truncate("aéééé", 7) // a + é + (half of é) + ...
	assert.Equal(t, "aé...", s)
	assert.True(t, utf8.ValidString(s))
	for n := 1; n < 12; n++ {
		got := text.Truncate("日本語のテキスト", n)
		assert.True(t, utf8.ValidString(got), n)
		assert.LessOrEqual(t, len(got), n, n)
	}
}

func TestFirstNonEmpty(t *testing.T) {
	assert.Equal(t, "b@x.test", text.FirstNonEmpty("", "  ", " b@x.test ", "c"))
	assert.Equal(t, "", text.FirstNonEmpty(" ", ""))
	assert.Equal(t, "", text.FirstNonEmpty())
}
