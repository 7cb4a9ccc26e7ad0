package pgtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A factory's zero fields take the defaults its option struct documents;
// set fields are written as given.
func TestFactoryDefaults(t *testing.T) {
	db, _ := NewDB(t)
	org := CreateOrg(t, db, Org{})
	bare := CreateClient(t, db, Client{Org: org})
	assert.Equal(t, "Ada|Client|NULL|NULL", Text(t, db, `select concat_ws('|', first_name, last_name, coalesce(email, 'NULL'), coalesce(phone, 'NULL')) from clients where id = $1`, bare))
	full := CreateClient(t, db, Client{Org: org, Email: "ada@client.test", Phone: "+15555550123"})
	assert.Equal(t, "ada@client.test|+15555550123", Text(t, db, `select concat_ws('|', email, phone) from clients where id = $1`, full))

	inv := CreateInvoice(t, db, Invoice{Org: org, Client: bare})
	assert.Equal(t, "sent|0|10.00|10.00", Text(t, db, `select concat_ws('|', status, due_date - current_date, total, balance) from invoices where id = $1`, inv))
	inv = CreateInvoice(t, db, Invoice{Org: org, Client: bare, Status: "paid", DueInDays: -3, Amount: "120.50"})
	assert.Equal(t, "paid|-3|120.50|120.50", Text(t, db, `select concat_ws('|', status, due_date - current_date, total, balance) from invoices where id = $1`, inv))

	wf := CreateWorkflow(t, db, Workflow{Org: org, Trigger: "stale_job"})
	assert.Equal(t, "stale_job workflow|stale_job|{}|[]", Text(t, db, `select concat_ws('|', name, trigger_type, trigger_config, steps) from automation_workflows where id = $1`, wf))
	wf = CreateUnvalidatedWorkflow(t, db, Workflow{Org: org, Trigger: "invoice_overdue", Config: `{"days_after_due":[1]}`, Steps: `[{"type":"nonsense"}]`})
	assert.Equal(t, `invoice_overdue|{"days_after_due": [1]}|[{"type": "nonsense"}]`, Text(t, db, `select concat_ws('|', trigger_type, trigger_config, steps) from automation_workflows where id = $1`, wf))
}
