-- Variant: an older install of the replaced system, from before
-- clients.organization_id existed (REPLACED_SYSTEM.md: "clients.organization_id
-- exists only on newer installs"). A client's organisation is then only the
-- profile's of its user_id. Applied after the other files; idempotent.
alter table public.clients drop column if exists organization_id;
