// The locales compiled in; their data is generated from CLDR by
// github.com/go-playground/locales. Adding one: import its package and list
// it in supported and supportedTags (TestNumbersMatchXText checks it).

package locale

import (
	"strings"

	"github.com/go-playground/locales"
	"github.com/go-playground/locales/de_AT"
	"github.com/go-playground/locales/de_CH"
	"github.com/go-playground/locales/de_DE"
	"github.com/go-playground/locales/en"
	"github.com/go-playground/locales/en_AU"
	"github.com/go-playground/locales/en_CA"
	"github.com/go-playground/locales/en_GB"
	"github.com/go-playground/locales/en_IE"
	"github.com/go-playground/locales/en_IN"
	"github.com/go-playground/locales/en_NZ"
	"github.com/go-playground/locales/en_US"
	"github.com/go-playground/locales/en_ZA"
	"github.com/go-playground/locales/es_ES"
	"github.com/go-playground/locales/es_MX"
	"github.com/go-playground/locales/es_US"
	"github.com/go-playground/locales/fr_BE"
	"github.com/go-playground/locales/fr_CA"
	"github.com/go-playground/locales/fr_CH"
	"github.com/go-playground/locales/fr_FR"
	"github.com/go-playground/locales/it_IT"
	"github.com/go-playground/locales/nl_BE"
	"github.com/go-playground/locales/nl_NL"
	"github.com/go-playground/locales/pt_BR"
	"github.com/go-playground/locales/pt_PT"
	"golang.org/x/text/language"
)

// supported are the locales dueflow formats in (the first is Fallback).
// Any other tag of their languages is matched to the closest of them.
var supported = map[string]func() locales.Translator{
	"en-US": en_US.New,
	"en-GB": en_GB.New,
	"en-AU": en_AU.New,
	"en-CA": en_CA.New,
	"en-NZ": en_NZ.New,
	"en-IE": en_IE.New,
	"en-ZA": en_ZA.New,
	"en-IN": en_IN.New,
	"fr-FR": fr_FR.New,
	"fr-CA": fr_CA.New,
	"fr-BE": fr_BE.New,
	"fr-CH": fr_CH.New,
	"es-ES": es_ES.New,
	"es-MX": es_MX.New,
	"es-US": es_US.New,
	"de-DE": de_DE.New,
	"de-AT": de_AT.New,
	"de-CH": de_CH.New,
	"it-IT": it_IT.New,
	"nl-NL": nl_NL.New,
	"nl-BE": nl_BE.New,
	"pt-BR": pt_BR.New,
	"pt-PT": pt_PT.New,
}

// supportedTags is supported in a fixed order, Fallback first (the matcher's
// default).
var supportedTags = []string{
	"en-US",
	"en-GB",
	"en-AU",
	"en-CA",
	"en-NZ",
	"en-IE",
	"en-ZA",
	"en-IN",
	"fr-FR",
	"fr-CA",
	"fr-BE",
	"fr-CH",
	"es-ES",
	"es-MX",
	"es-US",
	"de-DE",
	"de-AT",
	"de-CH",
	"it-IT",
	"nl-NL",
	"nl-BE",
	"pt-BR",
	"pt-PT",
}

var matcher = func() language.Matcher {
	tags := make([]language.Tag, len(supportedTags))
	for i, s := range supportedTags {
		tags[i] = language.MustParse(s)
	}
	return language.NewMatcher(tags)
}()

// parent returns the translator of a supported locale's language (what
// CLDR inherits from), nil when none is compiled in.
func parent(name string) locales.Translator {
	if strings.HasPrefix(name, "en-") {
		return en.New()
	}
	return nil
}
