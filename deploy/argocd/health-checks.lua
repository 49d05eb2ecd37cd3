-- Argo CD health check for flexgate.dev/v1alpha1 VendorConnection, AccessGroupBinding and SiteMapping.
-- One script for the three kinds: their status follows kstatus (observedGeneration + Ready/Reconciling/Stalled).
-- Argo CD runs it with gopher-lua (Lua 5.1) and the live object in the global `obj`.
--   Healthy     Ready=True and the current generation has been observed
--   Progressing no status yet, generation not yet observed, Reconciling=True, Ready Unknown/missing,
--               or Ready=False with a reason that means "still working"
--   Suspended   Ready=False because spec.suspend is set, or a SiteMapping waits for approval
--   Degraded    Stalled=True, or Ready=False with any other reason
local hs = {}

-- Ready=False reasons that mean the operator is still converging rather than failing.
local progressingReasons = {
  Reconciling = true,
  Progressing = true,
  InProgress = true,
  Pending = true,
  Initializing = true,
  Waiting = true,
  Syncing = true,
}

-- Ready=False reasons that mean a person paused the object or has yet to approve it.
local suspendedReasons = {
  Suspended = true,
  AwaitingApproval = true,
}

local function describe(condition, fallback)
  local reason = condition.reason
  local message = condition.message
  if reason ~= nil and reason ~= "" and message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= nil and message ~= "" then
    return message
  end
  if reason ~= nil and reason ~= "" then
    return reason
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for flexgate to report status"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for flexgate to observe generation " .. tostring(generation)
  return hs
end

local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type ~= nil then
      conditions[condition.type] = condition
    end
  end
end

local stalled = conditions["Stalled"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local reconciling = conditions["Reconciling"]
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling, "Reconciling")
  return hs
end

local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

if ready ~= nil and ready.status == "False" then
  if ready.reason ~= nil and progressingReasons[ready.reason] then
    hs.status = "Progressing"
  elseif ready.reason ~= nil and suspendedReasons[ready.reason] then
    hs.status = "Suspended"
  else
    hs.status = "Degraded"
  end
  hs.message = describe(ready, "Not ready")
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready, "Readiness unknown")
else
  hs.message = "Waiting for the Ready condition"
end
return hs
