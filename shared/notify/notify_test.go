package notify_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/shared/notify"
)

func TestMessageID(t *testing.T) {
	key := "0f8fad5b-d9cb-469f-a165-70867728950e:0:email"
	id := notify.MessageID(key, "Billing <billing@Acme.test>")
	assert.Regexp(t, regexp.MustCompile(`^[a-z2-7]{32}@acme\.test$`), id, "a hash at the sender's domain")
	assert.Equal(t, id, notify.MessageID(key, "billing@acme.test"), "stable across attempts: a receiver recognises a re-send")
	assert.NotContains(t, id, "0f8fad5b", "the execution's id is not revealed")
	assert.NotContains(t, id, "dueflow")
	assert.NotEqual(t, id, notify.MessageID("0f8fad5b-d9cb-469f-a165-70867728950e:1:email", "billing@acme.test"), "one per delivery")
	assert.Regexp(t, regexp.MustCompile(`^[a-z2-7]{32}@invalid$`), notify.MessageID("a::<b>", "nobody"))
	assert.Equal(t, "", notify.MessageID("", "x@y"))
}
