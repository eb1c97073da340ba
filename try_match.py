import django; django.setup()
from payments.sanctions.matching import NameIndex
from payments.sanctions.types import ListedName
names = ["Aibek Kadyrovich Usenov", "Иван Иванович Санкционов", "Gulnara Usonova", "Sergey Yuryevich Shchukin", "Keremet Bank", "Жанна Хабибуллина", "Ivan Sanctionov"]
ln = [ListedName(i, 1, "t", str(i), n, False, n, "person", ("1970-05-01",), ("RU",)) for i, n in enumerate(names)]
idx = NameIndex.build(ln)
import sys
for q in sys.argv[1:]:
    print(q)
    for h in idx.search(q):
        print("   ", h.score, h.rule, h.explanation)
