"""Sanctions list loading: how long `manage.py sanctions_load opensanctions` takes for a generated file of 40,000
names and aliases (FollowTheMoney JSON lines, Russian and Kyrgyz people in Latin and Cyrillic, some wallets), on a
fresh database (tulpar_bench_<pid> on DATABASE_URL's PostgreSQL, dropped at the end; SQLite when none answers).
Also times a second load of the same size (the flip, with the first version kept) and one full read of the
accessor the matcher uses (`listed_names()`).

    .venv/bin/python -m bench.sanctions_lists [--names 40000] [--seed 7]

`write_opensanctions()` is the generator; other benchmarks may use it for a list of a given size.
Prints one `name: value` line per figure (lines starting with `#` are commentary).
"""

import argparse
import json
import random
import sys
import time
from io import StringIO
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/sanctions_lists.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anyascii import anyascii  # noqa: E402

from bench import common  # noqa: E402 - after the path fix above
from bench.common import say  # noqa: E402

GIVEN_MALE = ["Иван", "Сергей", "Алексей", "Дмитрий", "Николай", "Владимир", "Андрей", "Михаил", "Олег", "Юрий",
              "Бакыт", "Нурлан", "Улан", "Азамат", "Эрлан", "Канат", "Мирлан", "Темирлан", "Жыргалбек", "Бекжан",
              "Асылбек", "Талант", "Чыңгыз", "Өмүр", "Үсөн"]
GIVEN_FEMALE = ["Мария", "Наталья", "Елена", "Ольга", "Татьяна", "Анна", "Ирина", "Светлана", "Айгүл", "Айпери",
                "Гүлнара", "Жазгүл", "Нуриза", "Чолпон", "Бермет", "Асель", "Динара", "Мээрим"]
SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Козлов", "Новиков", "Морозов", "Петров",
            "Волков", "Соловьёв", "Васильев", "Зайцев", "Павлов", "Семёнов", "Голубев", "Виноградов", "Богданов",
            "Асанов", "Жумабаев", "Токтогулов", "Өмүрбеков", "Сыдыков", "Абдыкалыков", "Бакиев", "Осмонов",
            "Мамытов", "Эшимов", "Кадыров", "Үсөнов", "Төлөгөнов", "Исаков", "Жапаров", "Садыров", "Нурматов"]
ORGS = ["Банк", "Инвест", "Капитал", "Трейд", "Финанс", "Ресурс", "Транзит", "Альянс", "Холдинг", "Энерго"]


def _female(surname):
    return surname + "а" if surname.endswith(("ов", "ев", "ёв", "ин")) else surname


def _patronymic(father, female):
    if father.endswith(("й", "ь")):
        stem = father[:-1] + "е"
    else:
        stem = father + "о"
    return stem + ("вна" if female else "вич")


def write_opensanctions(path, *, names=40000, seed=7):
    """Write FollowTheMoney JSON lines with `names` names and aliases in all (about 3 per person: Latin primary,
    Cyrillic alias, "SURNAME, Given" alias; some organisations), one wallet per 40 entries. Returns
    (entries, names, wallets)."""
    rng = random.Random(seed)
    written = entries = wallets = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < names:
            entries += 1
            entity_id = f"NK-bench-{entries}"
            if rng.random() < 0.1:
                cyr = f"ООО «{rng.choice(ORGS)} {rng.choice(SURNAMES)[:-2]}»"
                props = {"name": [anyascii(cyr).upper()], "alias": [cyr], "country": [rng.choice(["ru", "kg"])]}
                schema = "Organization"
            else:
                female = rng.random() < 0.4
                given = rng.choice(GIVEN_FEMALE if female else GIVEN_MALE)
                surname = rng.choice(SURNAMES)
                surname = _female(surname) if female else surname
                patronymic = _patronymic(rng.choice(GIVEN_MALE[:10]), female)
                latin = [anyascii(w) for w in (given, patronymic, surname)]
                props = {"name": [f"{latin[0]} {latin[1]} {latin[2].upper()}"],
                         "alias": [f"{surname} {given} {patronymic}", f"{latin[2].upper()}, {latin[0]}"],
                         "birthDate": [f"{rng.randint(1950, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"],
                         "nationality": [rng.choice(["ru", "kg"])], "topics": ["sanction"]}
                schema = "Person"
            room = names - written
            props["alias"] = props["alias"][: max(room - 1, 0)]
            written += 1 + len(props["alias"])
            out.write(json.dumps({"id": entity_id, "schema": schema, "properties": props, "target": True,
                                  "last_change": "2026-11-20T00:00:00"}, ensure_ascii=False) + "\n")
            if entries % 40 == 0:
                wallets += 1
                out.write(json.dumps({"id": f"wallet-{entries}", "schema": "CryptoWallet", "properties": {
                    "publicKey": ["0x" + rng.randbytes(20).hex()], "currency": ["ETH"], "holder": [entity_id]}}) + "\n")
    return entries, written, wallets


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", type=int, default=40000, help="names and aliases in the generated file (default 40000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (the generated files)")
    args = p.parse_args()
    stack = common.Stack("lists", keep=args.keep)
    try:
        stack.environment()
        say(f"# database: {stack.create_database()}")
        stack.django()
        from django.core.management import call_command

        from payments.sanctions import lists

        first, second = stack.tmp / "first.ftm.json", stack.tmp / "second.ftm.json"
        entries, names, wallets = write_opensanctions(first, names=args.names, seed=args.seed)
        write_opensanctions(second, names=args.names, seed=args.seed + 1)
        say(f"# generated {entries} entries, {names} names and aliases, {wallets} wallets "
            f"({first.stat().st_size / 1e6:.1f} MB)")
        for label, path in (("first", first), ("second", second)):
            started = time.perf_counter()
            call_command("sanctions_load", "opensanctions", str(path), stdout=StringIO())
            say(f"sanctions.load_{label}_seconds: {time.perf_counter() - started:.2f}")
        started = time.perf_counter()
        count = sum(1 for _ in lists.listed_names())
        say(f"sanctions.listed_names_read_seconds: {time.perf_counter() - started:.2f}")
        say(f"sanctions.listed_names: {count}")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
