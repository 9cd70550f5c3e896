"""Convert and check data with the built-in types and formats, in this process."""

from girder_worker.analysis import convert, validators

csv_text = "name,size\nalpha,1\nbeta,2.5\n"

print(convert("table", {"format": "csv", "data": csv_text}, {"format": "rows"}))
print(convert("table", {"format": "csv", "data": csv_text}, {"format": "objectlist.json"})["data"])
print(convert("tree", {"format": "newick", "data": "((A:1,B:2)C,D);"}, {"format": "nested"})["data"]["children"][1])
print([v["format"] for v in validators("table", None)])
