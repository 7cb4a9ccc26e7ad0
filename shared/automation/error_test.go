package automation_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/dueflow/dueflow/shared/automation"
)

func TestErrorShape(t *testing.T) {
	cause := errors.New("dial tcp: secret-internal-detail")
	e := automation.NewError(automation.CodeInvalidRequest, "malformed request body: unknown field", cause)
	wrapped := fmt.Errorf("read: %w", e)

	assert.Equal(t, "malformed request body: unknown field", e.Error(), "the message, never the cause's text")
	assert.ErrorIs(t, wrapped, cause, "the cause is reachable")
	assert.Equal(t, automation.CodeInvalidRequest, automation.ErrorCode(wrapped), "the code through a wrap")

	assert.Equal(t, automation.Code(""), automation.ErrorCode(nil))
	assert.Equal(t, automation.CodeInternal, automation.ErrorCode(cause), "an error without a code is internal")

	assert.Equal(t, cause.Error(), automation.NewError(automation.CodeInternal, "", cause).Error(), "no message: the cause's text")
	assert.Equal(t, "too_large", automation.NewError(automation.CodeTooLarge, "", nil).Error(), "neither: the code")
}
