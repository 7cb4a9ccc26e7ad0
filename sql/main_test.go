package sqlfiles_test

import (
	"testing"

	"github.com/dueflow/dueflow/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
