-- Exercises health-checks.lua on sample objects the way Argo CD runs it (global `obj`, script returns hs),
-- and checks that argocd-cm-patch.yaml embeds the current script for all three kinds.
-- Run from the repository root or from deploy/argocd:  lua5.4 deploy/argocd/health_test.lua  (lua5.1 works too)
local dir = (arg and arg[0] and arg[0]:match("^(.*)/[^/]*$")) or "."
local scriptPath = dir .. "/health-checks.lua"
local chunk = assert(loadfile(scriptPath))

local passed, failed = 0, 0

local function health(object)
  obj = object
  local hs = chunk()
  obj = nil
  return hs
end

local function expect(name, object, wantStatus, wantMessagePart)
  local hs = health(object)
  local ok = hs ~= nil and hs.status == wantStatus
  if ok and wantMessagePart ~= nil then
    ok = hs.message ~= nil and string.find(hs.message, wantMessagePart, 1, true) ~= nil
  end
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print(string.format("FAIL %s: want %s (%s), got %s (%s)", name, wantStatus, tostring(wantMessagePart),
      tostring(hs and hs.status), tostring(hs and hs.message)))
  end
end

local function cond(type_, status, reason, message)
  return { type = type_, status = status, reason = reason, message = message }
end

local function vc(generation, status)
  return {
    apiVersion = "flexgate.dev/v1alpha1",
    kind = "VendorConnection",
    metadata = { name = "kisi", namespace = "space-a", generation = generation },
    spec = {},
    status = status,
  }
end

expect("healthy", vc(3, { observedGeneration = 3, conditions = {
  cond("Ready", "True", "Synced", "12 members provisioned"),
  cond("Reconciling", "False", "Idle", ""),
  cond("Stalled", "False", "NoError", ""),
} }), "Healthy", "12 members provisioned")

expect("no status", vc(1, nil), "Progressing", "report status")
expect("empty status", vc(1, {}), "Progressing", "observe generation 1")
expect("generation not observed", vc(4, { observedGeneration = 3, conditions = {
  cond("Ready", "True", "Synced", "old generation was fine"),
} }), "Progressing", "generation 4")
expect("stale stalled is progressing", vc(5, { observedGeneration = 4, conditions = {
  cond("Stalled", "True", "InvalidCredentials", "401 from Kisi"),
} }), "Progressing", "generation 5")
expect("reconciling", vc(2, { observedGeneration = 2, conditions = {
  cond("Ready", "False", "Reconciling", "syncing members"),
  cond("Reconciling", "True", "Syncing", "syncing 40 members"),
} }), "Progressing", "syncing 40 members")
expect("ready unknown", vc(2, { observedGeneration = 2, conditions = {
  cond("Ready", "Unknown", "Starting", "first sync pending"),
} }), "Progressing", "first sync pending")
expect("no conditions", vc(2, { observedGeneration = 2, conditions = {} }), "Progressing", "Ready condition")
expect("ready false progressing reason", vc(2, { observedGeneration = 2, conditions = {
  cond("Ready", "False", "Pending", "waiting for SiteMapping"),
} }), "Progressing", "waiting for SiteMapping")

expect("stalled", vc(7, { observedGeneration = 7, conditions = {
  cond("Ready", "False", "InvalidCredentials", "credentials rejected"),
  cond("Stalled", "True", "SecretNotFound", "Secret space-a/kisi-credentials not found"),
} }), "Degraded", "SecretNotFound: Secret space-a/kisi-credentials not found")
expect("stalled wins over reconciling", vc(7, { observedGeneration = 7, conditions = {
  cond("Reconciling", "True", "Syncing", ""),
  cond("Stalled", "True", "InvalidSpec", "unknown plan"),
} }), "Degraded", "unknown plan")
expect("ready false failure reason", vc(1, { observedGeneration = 1, conditions = {
  cond("Ready", "False", "VendorUnavailable", "Brivo API returned 503"),
} }), "Degraded", "Brivo API returned 503")
expect("ready false no reason", vc(1, { observedGeneration = 1, conditions = {
  cond("Ready", "False", nil, nil),
} }), "Degraded", "Not ready")

-- The three kinds share the script: a SiteMapping behaves like a VendorConnection.
local sm = vc(1, { observedGeneration = 1, conditions = { cond("Ready", "True", "Mapped", "3 locations") } })
sm.kind = "SiteMapping"
expect("sitemapping healthy", sm, "Healthy", "3 locations")
expect("suspended", vc(3, { observedGeneration = 3, conditions = {
  cond("Ready", "False", "Suspended", "spec.suspend is true"),
} }), "Suspended", "spec.suspend is true")
expect("awaiting approval", vc(1, { observedGeneration = 1, conditions = {
  cond("Ready", "False", "AwaitingApproval", "review status.proposal, then set approved: true"),
} }), "Suspended", "set approved: true")

-- argocd-cm-patch.yaml must embed exactly this script (indented 4 spaces) under each of the three keys.
local function readAll(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

local script = readAll(scriptPath)
local patch = readAll(dir .. "/argocd-cm-patch.yaml")
for _, kind in ipairs({ "VendorConnection", "AccessGroupBinding", "SiteMapping" }) do
  local key = "  resource.customizations.health.flexgate.dev_" .. kind .. ": |\n"
  local start = string.find(patch, key, 1, true)
  local embedded = nil
  if start ~= nil then
    local lines = {}
    local rest = string.sub(patch, start + #key)
    for line in string.gmatch(rest, "([^\n]*)\n") do
      if line == "" then
        lines[#lines + 1] = ""
      elseif string.sub(line, 1, 4) == "    " then
        lines[#lines + 1] = string.sub(line, 5)
      else
        break
      end
    end
    while #lines > 0 and lines[#lines] == "" do
      lines[#lines] = nil
    end
    embedded = table.concat(lines, "\n") .. "\n"
  end
  if embedded == script then
    passed = passed + 1
  else
    failed = failed + 1
    print("FAIL argocd-cm-patch.yaml does not embed the current health-checks.lua for " .. kind)
  end
end

print(string.format("%d passed, %d failed", passed, failed))
if failed > 0 then
  os.exit(1)
end
