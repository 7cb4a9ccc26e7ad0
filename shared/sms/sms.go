// Package sms measures the text of an SMS the way carriers send and bill
// it: the encoding it needs (GSM-7 when every character is in the GSM 03.38
// alphabet, UCS-2 otherwise) and the number of segments it goes out as.
//
// GSM-7: 160 septets in one message, 153 per segment once it is split
// (the user data header takes the rest); a character of the extension
// table (^ { } \ [ ~ ] | € and form feed) takes 2 septets. UCS-2: 70
// UTF-16 code units in one message, 67 per segment; a character outside the
// Basic Multilingual Plane (most emoji) takes 2. One character outside the
// GSM-7 alphabet (a curly apostrophe, an emoji) makes the whole text UCS-2.
// A split never cuts a 2-septet or 2-unit character in two, as 3GPP TS
// 23.038 asks, so a segment may carry one unit less than its capacity.
package sms

import "strings"

// Encoding is the character set a text is sent in.
type Encoding string

// Encodings of an SMS.
const (
	GSM7 Encoding = "GSM-7"
	UCS2 Encoding = "UCS-2"
)

// Capacities of one SMS, in septets (GSM-7) or UTF-16 code units (UCS-2).
const (
	GSM7Single = 160 // a text sent as one message
	GSM7Part   = 153 // each segment of a split text
	UCS2Single = 70
	UCS2Part   = 67
)

// gsmBasic is the GSM 03.38 default alphabet (the escape code 0x1B left out).
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension is the GSM 03.38 extension table: escape + one septet each.
const gsmExtension = "\f^{}\\[~]|€"

// Length is how a text goes out as SMS.
type Length struct {
	Encoding Encoding
	Units    int // septets (GSM-7) or UTF-16 code units (UCS-2)
	Segments int // messages the text is sent as; 0 for an empty text
}

// Measure returns the encoding, size and segment count of text. Invalid
// UTF-8 bytes are counted as U+FFFD (UCS-2).
func Measure(text string) Length {
	enc := GSM7
	for _, r := range text {
		if !strings.ContainsRune(gsmBasic, r) && !strings.ContainsRune(gsmExtension, r) {
			enc = UCS2
			break
		}
	}
	width := gsmWidth
	single, part := GSM7Single, GSM7Part
	if enc == UCS2 {
		width = ucs2Width
		single, part = UCS2Single, UCS2Part
	}
	l := Length{Encoding: enc}
	used := 0 // units in the current segment of a split text
	for _, r := range text {
		w := width(r)
		l.Units += w
		if used+w > part {
			l.Segments++
			used = 0
		}
		used += w
	}
	switch {
	case l.Units == 0:
		l.Segments = 0
	case l.Units <= single:
		l.Segments = 1
	default:
		l.Segments++ // the last, partly filled segment
	}
	return l
}

// gsmWidth is the septets of a character of the GSM-7 alphabet.
func gsmWidth(r rune) int {
	if strings.ContainsRune(gsmExtension, r) {
		return 2
	}
	return 1
}

// ucs2Width is the UTF-16 code units of a character.
func ucs2Width(r rune) int {
	if r > 0xFFFF {
		return 2
	}
	return 1
}
