package providerevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/dueflow/dueflow/shared/automation"
	"github.com/dueflow/dueflow/shared/unsubscribe"
)

// OneClickBody is the form field a one-click unsubscribe POST carries
// (RFC 8058): List-Unsubscribe=One-Click.
const (
	OneClickField = "List-Unsubscribe"
	OneClickValue = "One-Click"
)

// page is one HTML answer of the unsubscribe path.
type page struct {
	Title   string
	Message string
	Form    bool   // show the confirmation form
	Action  string // the form's URL (this path with the token)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}button{font-size:1rem;padding:.6rem 1.2rem}</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{if .Form}}<form method="post" action="{{.Action}}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>{{end}}
</body>
</html>
`))

// writePage answers with an HTML page that is never cached, framed or sent
// as a referrer (the URL holds the token).
func writePage(w http.ResponseWriter, status int, p page) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func channelWords(ch automation.Channel) string {
	if ch == automation.ChannelSMS {
		return "text messages"
	}
	return "emails"
}

// serveUnsubscribe shows the confirmation page (GET: nothing is recorded,
// link scanners fetch it) or records the opt-out (POST, as mail clients
// send it: List-Unsubscribe=One-Click, form-encoded or multipart). The
// token is verified first; a missing one is 400, a bad or expired one 401.
func (h *Handler) serveUnsubscribe(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	token := r.URL.Query().Get("t")
	post := r.Method == http.MethodPost
	if !post && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		writePage(w, http.StatusMethodNotAllowed, page{Title: "Not allowed", Message: "Open the link from your message."})
		return
	}
	if token == "" {
		log.WarnContext(r.Context(), "request rejected", "provider", ProviderLink, "status", http.StatusBadRequest, "reason", "no token")
		writePage(w, http.StatusBadRequest, page{Title: "Link incomplete", Message: "This unsubscribe link is incomplete. Open it again from your message."})
		return
	}
	claims, err := unsubscribe.Verify(h.opt.UnsubscribeKeys, token, h.now())
	if err != nil {
		why, msg := "bad token", "This unsubscribe link is not valid. Open it again from your message."
		if errors.Is(err, unsubscribe.ErrExpired) {
			why, msg = "expired token", "This unsubscribe link has expired. Use the link in a more recent message, or contact the business that sent it."
		}
		log.WarnContext(r.Context(), "request rejected", "provider", ProviderLink, "status", http.StatusUnauthorized, "reason", why)
		writePage(w, http.StatusUnauthorized, page{Title: "Link not valid", Message: msg})
		return
	}
	words := channelWords(automation.Channel(claims.Channel))
	if !post {
		action := (&url.URL{Path: r.URL.Path, RawQuery: url.Values{"t": {token}}.Encode()}).String()
		writePage(w, http.StatusOK, page{Title: "Unsubscribe", Form: true, Action: action,
			Message: "Stop receiving these " + words + "? Invoices and appointment confirmations you need will still reach you."})
		return
	}
	if err := h.checkOneClick(r); err != nil {
		log.WarnContext(r.Context(), "request rejected", "provider", ProviderLink, "status", statusOf[err.Code], "reason", err.Message)
		writePage(w, statusOf[err.Code], page{Title: "Not unsubscribed", Message: "Use the button on the unsubscribe page."})
		return
	}
	sum := sha256.Sum256([]byte(token))
	ev := Event{Kind: KindOptOut, Provider: ProviderLink, EventID: hex.EncodeToString(sum[:]),
		OrganizationID: claims.OrganizationID, ClientID: claims.ClientID, Channel: automation.Channel(claims.Channel), OccurredAt: h.now()}
	if err := h.record(r, log, ProviderLink, []Event{ev}); err != nil {
		log.ErrorContext(r.Context(), "provider event not recorded", "provider", ProviderLink, "error", redactErr(err))
		writePage(w, http.StatusServiceUnavailable, page{Title: "Please try again", Message: "We could not record your request just now. Please try again in a few minutes."})
		return
	}
	writePage(w, http.StatusOK, page{Title: "Unsubscribed", Message: "You will no longer receive these " + words + "."})
}

// checkOneClick reads the POST body: it must carry List-Unsubscribe=One-Click
// (form-encoded or multipart/form-data, RFC 8058).
func (h *Handler) checkOneClick(r *http.Request) *automation.Error {
	body, err := h.readBody(r)
	if err != nil {
		var re *automation.Error
		if errors.As(err, &re) {
			return re
		}
		return reject(automation.CodeInvalidRequest, "unreadable body")
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var value string
	switch mt {
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			if p.FormName() == OneClickField {
				b, _ := io.ReadAll(io.LimitReader(p, 64))
				value = string(b)
				break
			}
		}
	default: // application/x-www-form-urlencoded, or no type
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return reject(automation.CodeInvalidRequest, "body is not a form")
		}
		value = form.Get(OneClickField)
	}
	if value != OneClickValue {
		return reject(automation.CodeInvalidRequest, "body lacks List-Unsubscribe=One-Click")
	}
	return nil
}
