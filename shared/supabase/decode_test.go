package supabase

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeSamples are answers of every shape: arrays of documents with
// strings holding brackets, commas and escaped quotes, nested arrays,
// white space everywhere, null elements; and what is not an array.
var decodeSamples = []string{
	`[]`, ` [ ] `, "\n[\t]\r\n", `[{}]`, `[null]`, `[1,"a",true,null,[],{}]`,
	`[{"a": "x,]}[{\"", "b": [1, [2, {"c": "\\"}]]}, {"d": "é ☃ \u00e9"}]`,
	` [ {"a" : 1} ,  {"b":[ ]}	,null ] `,
	`[[[]],[{"x":[{"y":"]"}]}]]`,
	`null`, `{"code":"x"}`, `"text"`, `42`,
	`[1,]`, `[`, `[{"a":1}`, `[1] x`, ``, `[{"a":"\x"}]`,
}

// checkDecode asserts that decode gives exactly what json.Unmarshal gives
// for *[]json.RawMessage: the same elements (bytes), the same nil/empty
// slice, an error in the same cases.
func checkDecode(t *testing.T, body string) {
	var want, got []json.RawMessage
	wantErr := json.Unmarshal([]byte(body), &want)
	gotErr := decode([]byte(body), &got)
	if wantErr != nil {
		assert.Error(t, gotErr, "%q", body)
		return
	}
	require.NoError(t, gotErr, "%q", body)
	assert.Equal(t, want == nil, got == nil, "%q", body)
	require.Equal(t, len(want), len(got), "%q", body)
	for i := range want {
		assert.Equal(t, string(want[i]), string(got[i]), "%q element %d", body, i)
	}
}

func TestDecodeSplitsLikeUnmarshal(t *testing.T) {
	for _, body := range decodeSamples {
		checkDecode(t, body)
	}
	// other targets are json.Unmarshal's business
	var n int
	require.NoError(t, decode([]byte(`7`), &n))
	assert.Equal(t, 7, n)
	// an element appended to does not write into its neighbour
	var docs []json.RawMessage
	require.NoError(t, decode([]byte(`[[1],[2]]`), &docs))
	_ = append(docs[0], 'x')
	assert.Equal(t, `[2]`, string(docs[1]))
}

func FuzzDecode(f *testing.F) {
	for _, body := range decodeSamples {
		f.Add(body)
	}
	f.Fuzz(checkDecode)
}
