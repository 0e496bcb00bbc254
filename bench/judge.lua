-- wrk script: POSTs judgements, taking (path, form body) lines in turn from the file named by
-- JUDGEMENTS, as a signed-in assessor's browser would send them (its cookie in COOKIE). Each
-- of wrk's threads starts at its own share of the lines, so no two judge the same version.
local requests = {}
local next_one = 1
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("JUDGEMENTS")) do
    local path, body = line:match("^([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Sec-Fetch-Site"] = "same-origin",
      ["Cookie"] = os.getenv("COOKIE"),
    }, body)
  end
  -- Two threads by default: the second starts halfway.
  next_one = (id or 0) * math.floor(#requests / 2) % #requests + 1
end

function request()
  local r = requests[next_one]
  next_one = next_one % #requests + 1
  return r
end
