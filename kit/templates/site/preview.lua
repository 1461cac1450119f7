-- pandoc filter for the lesson preview (kit.site): Workbench markdown -> plain HTML pages.
--  * links to other pages of the lesson (`../learners/setup.md`, `02-docker.md`) point at the
--    flat preview's `NAME.html`;
--  * a `solution` (or `hint`) div becomes <details>, collapsed as the Workbench shows it;
--  * every Workbench callout div gets a heading line naming its kind.
local labels = {
  questions = "Questions", objectives = "Objectives", keypoints = "Key points",
  callout = "Callout", challenge = "Challenge", discussion = "Discussion",
  caution = "Caution", checklist = "Checklist", prereq = "Prerequisite",
  instructor = "Instructor note", testimonial = "Testimonial", spoiler = "Spoiler",
}

function Link(link)
  local target = link.target
  if not target:match("^%a[%w+.-]*:") and not target:match("^#") then
    local path, anchor = target:match("^([^#]*)(#?.*)$")
    if path:match("%.md$") then
      link.target = path:gsub("^.*/", ""):gsub("%.md$", ".html") .. anchor
    end
  end
  return link
end

function Div(div)
  local kind = div.classes[1]
  if kind == "solution" or kind == "hint" then
    local title = kind == "solution" and "Show me the solution" or "Give me a hint"
    local blocks = { pandoc.RawBlock("html", '<details class="' .. kind .. '"><summary>' .. title .. "</summary>") }
    for _, block in ipairs(div.content) do table.insert(blocks, block) end
    table.insert(blocks, pandoc.RawBlock("html", "</details>"))
    return blocks
  end
  if labels[kind] then
    table.insert(div.content, 1, pandoc.Div({ pandoc.Plain({ pandoc.Str(labels[kind]) }) },
      pandoc.Attr("", { "callout-label" })))
    div.classes:insert("callout-box")
    return div
  end
end
