package function

import (
	"github.com/dueflow/dueflow/shared/engine"
	"github.com/dueflow/dueflow/shared/lambdaurl"
	"github.com/dueflow/dueflow/shared/supabase"
)

// Interface checks of the implementations the wiring puts together whose
// interface is declared by a package above them (beside its caller): the
// implementation cannot name it without an import pointing up, so the
// check lives here, where both are known. The others sit beside their type.
var (
	_ engine.Store        = (*supabase.Client)(nil)
	_ lambdaurl.Processor = (*engine.Engine)(nil)
	_ Handler             = (*lambdaurl.Handler)(nil)
	_ Handler             = (*lambdaurl.HTTPHandler)(nil)
)
