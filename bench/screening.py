"""`make bench-screening`: name matching quality and speed on a generated 40,000-name list (bench/README.md).

Pure Python, no servers: the matcher (payments.sanctions.matching) takes ListedNames, so the list is generated in
memory with a fixed seed. Prints `screening.<figure>: value` lines; `#` lines are commentary.
"""

import argparse
import gc
import os
import random
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-screening-not-secret")

import django  # noqa: E402

django.setup()

from rapidfuzz import fuzz, process, utils  # noqa: E402

from payments.sanctions.matching import NameIndex, ScreeningInputError  # noqa: E402
from payments.sanctions.types import ListedName  # noqa: E402

# Name pools (Cyrillic for Russian, Kyrgyz and Central Asian names; English names with their usual Cyrillic form).
RU_MALE = ("Александр Алексей Анатолий Андрей Антон Аркадий Артём Борис Вадим Валентин Валерий Василий Виктор "
           "Виталий Владимир Владислав Вячеслав Геннадий Георгий Глеб Григорий Денис Дмитрий Евгений Егор Иван Игорь "
           "Илья Кирилл Константин Леонид Максим Михаил Никита Николай Олег Павел Пётр Роман Руслан Сергей Станислав "
           "Степан Тимофей Фёдор Юрий Ярослав Эдуард Семён Лев Матвей Захар Арсений Всеволод Ефим Яков").split()
RU_FEMALE = ("Александра Алина Алла Анастасия Анна Антонина Валентина Валерия Вера Виктория Галина Дарья Евгения "
             "Екатерина Елена Елизавета Жанна Зоя Ирина Карина Кристина Ксения Лариса Любовь Людмила Маргарита Марина "
             "Мария Надежда Наталья Нина Оксана Ольга Полина Светлана Софья Тамара Татьяна Юлия Яна Ульяна Эльвира "
             "Регина Вероника Диана Василиса Таисия").split()
RU_ROOTS = ("Иван Петр Сидор Кузнец Смирн Попов Лебед Козл Новик Морозов Волк Соловь Васильев Зайц Павл Семён Голуб "
            "Виноград Богдан Воробь Фёдор Михайл Беляк Тарас Белов Комар Орл Киселёв Макар Андреев Ковал Ильин Гусев "
            "Титов Кузьмин Кудрявц Баранов Куликов Алексеев Степан Яковлев Сорокин Сергеев Романов Захаров Борисов "
            "Королёв Герасим Пономарёв Григорьев Лазарев Медведев Ершов Никитин Соболев Рябов Поляков Цветков Данилов "
            "Жуков Фролов Журавлёв Николаев Крылов Максимов Сидоров Осипов Белоусов Федотов Дорофеев Егоров Матвеев "
            "Бобров Дмитриев Калинин Анисимов Петухов Антонов Тимофеев Никифоров Веселов Филиппов Марков Большаков "
            "Суханов Миронов Ширяев Александров Коновалов Шестаков Казаков Ефимов Денисов Громов Фомин Давыдов "
            "Мельников Щербаков Блинов Колесников Карпов Афанасьев Власов Маслов Исаков Тихонов Аксёнов Гаврилов "
            "Родионов Котов Горбунов Кудряшов Быков Зуев Третьяков Савельев Панов Рыбаков Суворов Абрамов Воронов "
            "Мухин Архипов Трофимов Мартынов Емельянов Горшков Чернов Овчинников Селезнёв Панфилов Копылов Михеев "
            "Галкин Назаров Лобанов Лукин Беляков Потапов Некрасов Хохлов Жданов Наумов Шилов Воронцов Ермаков "
            "Дроздов Игнатьев Савин Логинов Сафонов Капустин Кириллов Моисеев Елисеев Кошелев Костин Горбачёв Орехов "
            "Ефремов Исаев Евдокимов Калашников Кабанов Носков Юдин Кулагин Лапин Прохоров Нестеров Харитонов "
            "Агафонов Муравьёв Ларионов Федосеев Зимин Пахомов Шубин Игнатов Филатов Крюков Рогов Кулаков Терентьев "
            "Молчанов Владимиров Артемьев Гурьев Зиновьев Гришин Кононов Дементьев Ситников Симонов Мишин Фадеев "
            "Комиссаров Мамонтов Носов Гуляев Шаров Устинов Вишняков Евсеев Лаврентьев Брагин Константинов Корнилов "
            "Авдеев Зыков Бирюков Шарапов Никонов Щукин Дьячков Одинцов Сазонов Якушев Красильников Гордеев "
            "Самойлов Князев Беспалов Уваров Шашков Бобылёв Доронин Белозёров Рожков Самсонов Мясников Лихачёв "
            "Буров Сысоев Фомичёв Русаков Стрелков Гущин Тетерин Колобов Субботин Фокин Блохин Селиверстов Пестов "
            "Кондратьев Силин Меркушев Лыткин Туров Хабибуллин Шайхутдинов Гарипов Сафин Зарипов").split()
KG_MALE = ("Айбек Азамат Бакыт Бекзат Нурлан Улан Эрлан Талант Марат Данияр Жанболот Канат Мирлан Нурбек Султан "
           "Тилек Чынгыз Эркин Адилет Алмаз Асылбек Бактыбек Жоомарт Кубанычбек Мелис Нурсултан Өмүрбек Үсөн Эмил "
           "Жыргалбек Бектур Тынчтык Нурдин Алтынбек Темир Курманбек Медер Айдар Дастан Жеңиш Шайлоо Сапар Жусуп "
           "Абдыкадыр Ысмайыл Төлөгөн Болот").split()
KG_FEMALE = ("Айгүл Айжан Айпери Гүлнара Жылдыз Нургүл Асель Бермет Динара Назира Чолпон Эльмира Айзада Бурул "
             "Гүлзат Жамиля Калыйча Мээрим Нуриза Салтанат Токтобүбү Үмүт Чынара Айнура Бегимай Шайыркүл Аселия "
             "Гүлмира Зарина Камила Мадина Нуржан Сезим Толгонай Айсулуу").split()
KG_ROOTS = ("Усен Асан Токтогул Бакиев Жапаров Ташиев Атамбаев Отунбаев Исаков Садыров Мамыт Осмон Абдыраим "
            "Шамшиев Жолдош Курманалиев Сыдыков Кадыров Эсенгул Турдубаев Бекмурат Жээнбеков Акаев Чотонов Мурзаев "
            "Сатыбалдиев Кулов Текебаев Бабанов Омурбеков Ибраимов Алымкулов Тойчубеков Абдылдаев Мамбетов "
            "Өмүрзаков Үсөнбаев Жумабеков Токтосунов Сарыбаев Бөкөнбаев Кененсариев Ормонов Нурматов Тилебаев "
            "Шабданов Арстанбеков Байтиков Чыныбаев Дүйшөнбиев Абылгазиев Мырзакматов Айтматов Рыскулов "
            "Жээнбаев Калыков Кочкоров Молдокулов Саралаев Түлөбердиев Эшимбеков Ысыков Ногойбаев Бейшеналиев").split()
CA_MALE = ("Джамшид Рустам Фаррух Шерзод Бахтиёр Улугбек Дильшод Тимур Жасур Азиз Санжар Бобур Ойбек Зафар Нодир "
           "Равшан Шухрат Хуршид Фарход Акмал Ерлан Нурболат Ержан Даурен Асхат Бауыржан Мухтар Айдос Куаныш "
           "Исмоил Шахбоз Комрон Далер Фирдавс Хуснидин Абдулло Мансур Сухроб").split()
CA_FEMALE = ("Дилноза Гулноза Шахноза Нигора Мохира Зухра Феруза Малика Севара Мадина Айгерим Динара Гульмира "
             "Жанар Сабина Мунира Фотима Нилуфар Хуршида Барно").split()
CA_ROOTS = ("Каримов Рахимов Юсупов Холматов Алиев Мирзаев Назаров Хасанов Рашидов Султанов Усманов Исмаилов "
            "Абдуллаев Турсунов Эргашев Хакимов Нуриддинов Шарипов Саидов Файзуллаев Ахмедов Джураев Тошматов "
            "Кудратов Мансуров Раджабов Сафаров Шукуров Хамидов Юлдашев Нурмагамбетов Сулейменов Жумабаев "
            "Касымов Токаев Назарбаев Бекмуханбетов Ахметов Мухамеджанов Исмагулов Ибрагимов Камалов Худайбердиев "
            "Бобоев Давлатов Олимов Каримджонов Рахмонов Сатторов Мирзоев").split()
EN_FIRST = [("James", "Джеймс"), ("John", "Джон"), ("Robert", "Роберт"), ("Michael", "Майкл"), ("William", "Уильям"),
            ("David", "Дэвид"), ("Richard", "Ричард"), ("Joseph", "Джозеф"), ("Thomas", "Томас"),
            ("Charles", "Чарльз"), ("Daniel", "Дэниел"), ("Matthew", "Мэттью"), ("Anthony", "Энтони"),
            ("Mark", "Марк"), ("Steven", "Стивен"), ("Paul", "Пол"), ("Andrew", "Эндрю"), ("Kevin", "Кевин"),
            ("Brian", "Брайан"), ("George", "Джордж"), ("Edward", "Эдвард"), ("Ronald", "Рональд"),
            ("Jason", "Джейсон"), ("Ryan", "Райан"), ("Gary", "Гэри"), ("Nicholas", "Николас"), ("Eric", "Эрик"),
            ("Mary", "Мэри"), ("Patricia", "Патрисия"), ("Jennifer", "Дженнифер"), ("Linda", "Линда"),
            ("Elizabeth", "Элизабет"), ("Barbara", "Барбара"), ("Susan", "Сьюзан"), ("Jessica", "Джессика"),
            ("Sarah", "Сара"), ("Karen", "Карен"), ("Nancy", "Нэнси"), ("Lisa", "Лиза"), ("Margaret", "Маргарет"),
            ("Sandra", "Сандра"), ("Ashley", "Эшли"), ("Emily", "Эмили"), ("Donna", "Донна"), ("Michelle", "Мишель"),
            ("Laura", "Лора"), ("Rebecca", "Ребекка"), ("Helen", "Хелен"), ("Amy", "Эми"), ("Emma", "Эмма")]
EN_LAST = [("Smith", "Смит"), ("Johnson", "Джонсон"), ("Williams", "Уильямс"), ("Brown", "Браун"), ("Jones", "Джонс"),
           ("Miller", "Миллер"), ("Davis", "Дэвис"), ("Wilson", "Уилсон"), ("Anderson", "Андерсон"),
           ("Taylor", "Тейлор"), ("Thomas", "Томас"), ("Moore", "Мур"), ("Jackson", "Джексон"), ("Martin", "Мартин"),
           ("Thompson", "Томпсон"), ("White", "Уайт"), ("Harris", "Харрис"), ("Clark", "Кларк"), ("Lewis", "Льюис"),
           ("Robinson", "Робинсон"), ("Walker", "Уокер"), ("Young", "Янг"), ("Allen", "Аллен"), ("King", "Кинг"),
           ("Wright", "Райт"), ("Scott", "Скотт"), ("Hill", "Хилл"), ("Green", "Грин"), ("Adams", "Адамс"),
           ("Baker", "Бейкер"), ("Nelson", "Нельсон"), ("Carter", "Картер"), ("Mitchell", "Митчелл"),
           ("Roberts", "Робертс"), ("Turner", "Тернер"), ("Phillips", "Филлипс"), ("Campbell", "Кэмпбелл"),
           ("Parker", "Паркер"), ("Evans", "Эванс"), ("Edwards", "Эдвардс"), ("Collins", "Коллинз"),
           ("Stewart", "Стюарт"), ("Morris", "Моррис"), ("Murphy", "Мерфи"), ("Cook", "Кук"), ("Rogers", "Роджерс"),
           ("Morgan", "Морган"), ("Cooper", "Купер"), ("Peterson", "Петерсон"), ("Bailey", "Бейли"),
           ("Reed", "Рид"), ("Kelly", "Келли"), ("Howard", "Говард"), ("Cox", "Кокс"), ("Ward", "Уорд"),
           ("Richardson", "Ричардсон"), ("Watson", "Уотсон"), ("Brooks", "Брукс"), ("Wood", "Вуд"),
           ("Bennett", "Беннетт"), ("Gray", "Грей"), ("Hughes", "Хьюз"), ("Price", "Прайс"), ("Sanders", "Сандерс"),
           ("Fisher", "Фишер"), ("Russell", "Рассел"), ("Hamilton", "Гамильтон"), ("Graham", "Грэм"),
           ("Wallace", "Уоллес"), ("Hayes", "Хейз"), ("Marshall", "Маршалл"), ("Owens", "Оуэнс"),
           ("Harrison", "Харрисон"), ("Gibson", "Гибсон"), ("Ellis", "Эллис"), ("Murray", "Мюррей"),
           ("Ford", "Форд"), ("Wells", "Уэллс"), ("Porter", "Портер"), ("Hunter", "Хантер"), ("Hicks", "Хикс"),
           ("Palmer", "Палмер"), ("Black", "Блэк"), ("Stone", "Стоун"), ("Fox", "Фокс"), ("Warren", "Уоррен"),
           ("Mills", "Миллс"), ("Rose", "Роуз"), ("Rice", "Райс"), ("Hudson", "Хадсон"), ("Hart", "Харт")]
FEMALE_EN = {"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
             "Nancy", "Lisa", "Margaret", "Sandra", "Ashley", "Emily", "Donna", "Michelle", "Laura", "Rebecca",
             "Helen", "Amy", "Emma"}
COMPANY_WORDS = ("Керемет Восток Север Альфа Бета Инвест Транс Нефть Газ Строй Торг Промышленный Капитал Финанс "
                 "Союз Логистик Экспорт Импорт Алтын Тоо Ала Ордо Байтерек Шелковый Путь Металл Энерго Сибирь Урал "
                 "Азия Евразия Кристалл Орион Гранит Меридиан Вектор Прогресс Аврора Стандарт Ресурс Холдинг").split()
COMPANY_FORMS = ("ООО", "АО", "ЗАО", "ОсОО", "Банк", "Групп", "Трейдинг")

# Romanisations ------------------------------------------------------------------------------------------------
BASE = {"а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "з": "z", "и": "i", "к": "k", "л": "l", "м": "m",
        "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "э": "e"}
ICAO = {**BASE, "е": "e", "ё": "e", "ж": "zh", "й": "i", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
        "ъ": "ie", "ы": "y", "ь": "", "ю": "iu", "я": "ia", "ң": "n", "ө": "o", "ү": "u"}
BGN = {**BASE, "е": "e", "ё": "ë", "ж": "zh", "й": "y", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch",
       "ъ": "\"", "ы": "y", "ь": "'", "ю": "yu", "я": "ya", "ң": "ng", "ө": "ö", "ү": "ü"}
VOWELS = set("аеёиоуыэюяөүъь")


def romanise(word, system, rng):
    out = []
    low = word.lower()
    for i, ch in enumerate(low):
        prev = low[i - 1] if i else ""
        if system == "icao":
            s = ICAO.get(ch, ch)
        elif system == "bgn":
            s = ("ye" if ch == "е" and (not prev or prev in VOWELS) else
                 "yë" if ch == "ё" and (not prev or prev in VOWELS) else BGN.get(ch, ch))
        else:  # informal, as people type on a phone
            s = {"ж": rng.choice(["zh", "j"]), "х": rng.choice(["kh", "h"]), "й": rng.choice(["y", "i", "j"]),
                 "ю": rng.choice(["yu", "ju", "iu"]), "я": rng.choice(["ya", "ja", "ia"]), "ц": rng.choice(["ts", "c", "tz"]),
                 "щ": rng.choice(["sch", "shch", "sh"]), "ё": rng.choice(["yo", "e", "io"]), "ь": "", "ъ": "",
                 "е": "ye" if not prev and rng.random() < 0.5 else "e", "ы": "y", "ч": "ch", "ш": "sh",
                 "ң": rng.choice(["n", "ng"]), "ө": rng.choice(["o", "oe"]), "ү": rng.choice(["u", "ue", "y"])}.get(
                     ch, BASE.get(ch, ch))
            if ch == "й" and i == len(low) - 1 and prev == "и":
                out[-1] = ""
                s = rng.choice(["iy", "y", "i", "ii"])
        out.append(s)
    text = "".join(out)
    return text[:1].upper() + text[1:]


def patronymic(father, female):
    base = father.rstrip("йь")
    if father.endswith(("ий", "ей", "ай")):
        stem = father[:-1]
        return stem + ("евна" if female else "евич")
    if father[-1] in "аяо":
        base = father[:-1]
    return base + ("овна" if female else "ович")


def female_surname(s):
    if s.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return s + "а"
    return s


def make_person(rng, kind):
    """(given, patronymic or "", surname, Cyrillic?) as Cyrillic words (English names: Latin with a Cyrillic twin)."""
    female = rng.random() < 0.4
    if kind == "ru":
        given = rng.choice(RU_FEMALE if female else RU_MALE)
        root = rng.choice(RU_ROOTS)
        surname = root if root.endswith(("ов", "ев", "ёв", "ин", "ын")) else root + rng.choice(["ов", "ин", "ев"])
        pat = patronymic(rng.choice(RU_MALE), female)
    elif kind == "kg":
        given = rng.choice(KG_FEMALE if female else KG_MALE)
        root = rng.choice(KG_ROOTS)
        surname = root if root.endswith(("ов", "ев", "ин")) else root + "ов"
        pat = patronymic(rng.choice(KG_MALE), female) if rng.random() < 0.5 else ""
    elif kind == "ca":
        given = rng.choice(CA_FEMALE if female else CA_MALE)
        surname = rng.choice(CA_ROOTS)
        pat = patronymic(rng.choice(CA_MALE), female) if rng.random() < 0.4 else ""
    else:
        pool = [f for f in EN_FIRST if (f[0] in FEMALE_EN) == female]
        first, first_cyr = rng.choice(pool)
        last, last_cyr = rng.choice(EN_LAST)
        middle = rng.choice([f for f in pool if f[0] != first]) if rng.random() < 0.3 else ("", "")
        return {"latin": (first, middle[0], last), "cyrillic": (first_cyr, middle[1], last_cyr), "en": True}
    if female:
        surname = female_surname(surname)
    return {"cyrillic": (given, pat, surname), "en": False}


def words_in(person, script, system, rng):
    if script == "latin":
        if person["en"]:
            return person["latin"]
        return tuple(romanise(w, system, rng) if w else "" for w in person["cyrillic"])
    return person["cyrillic"]


def written(given, middle, surname, *, order="given-first"):
    if order == "ofac":
        return f"{surname.upper()}, {given}" + (f" {middle}" if middle else "")
    parts = [given, middle, surname] if order == "given-first" else [surname, given, middle]
    return " ".join(p for p in parts if p)


# List generation ----------------------------------------------------------------------------------------------

def generate_list(rng, size):
    listed, people = [], []
    entry = 0
    while len(listed) < size:
        entry += 1
        if rng.random() < 0.06:  # an entity
            name = " ".join(rng.sample(COMPANY_WORDS, rng.choice([1, 2]))) + " " + rng.choice(COMPANY_FORMS)
            forms = [name, romanise(name, "bgn", rng) if rng.random() < 0.5 else name]
            for i, form in enumerate(dict.fromkeys(forms)):
                listed.append(ListedName(entry, 1, "bench", f"E{entry}", form, i > 0, forms[0], "entity"))
            continue
        kind = rng.choices(["ru", "kg", "ca", "en"], weights=[45, 25, 20, 10])[0]
        person = make_person(rng, kind)
        dob = f"{rng.randint(1950, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        nat = {"ru": "RU", "kg": "KG", "ca": rng.choice(["UZ", "KZ", "TJ"]), "en": rng.choice(["GB", "US"])}[kind]
        primary_words = words_in(person, "latin", "bgn", rng)
        names = [written(*primary_words, order="ofac")]
        if not person["en"]:
            names.append(written(*words_in(person, "latin", "icao", rng)))
            if rng.random() < 0.5:
                names.append(written(*person["cyrillic"]))
        if rng.random() < 0.3:
            names.append(written(*words_in(person, "latin", "informal", rng)))
        names = list(dict.fromkeys(names))
        for i, form in enumerate(names):
            listed.append(ListedName(entry, 1, "bench", f"P{entry}", form, i > 0, names[0], "person", (dob,), (nat,)))
        people.append((entry, person, dob, nat))
    return listed[:size], people


# Variants of a listed person ------------------------------------------------------------------------------------
CONFUSABLE = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "A": "А", "E": "Е", "O": "О",
              "P": "Р", "C": "С", "X": "Х", "K": "К", "M": "М", "H": "Н", "T": "Т", "B": "В"}
CONFUSABLE.update({v: k for k, v in list(CONFUSABLE.items())})


def typo(word, rng):
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["sub", "del", "ins", "swap"])
    alphabet = "абвгдеиклмнопрстуя" if any("а" <= c <= "я" for c in word.lower()) else "abdegiklmnoprstuv"
    if op == "sub":
        return word[:i] + rng.choice([c for c in alphabet if c != word[i].lower()]) + word[i + 1:]
    if op == "del":
        return word[:i] + word[i + 1:]
    if op == "ins":
        return word[:i] + rng.choice(alphabet) + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:] if i + 1 < len(word) else word


def variants(person, rng):
    """{class: name} for one listed person (each class changes one thing)."""
    script = "cyrillic" if rng.random() < 0.5 and not person["en"] else "latin"  # English names: as listed
    system = rng.choice(["icao", "bgn", "informal"])
    other = "latin" if script == "cyrillic" and not person["en"] else "cyrillic"
    given, middle, surname = words_in(person, script, system, rng)
    out = {}
    og, om, os_ = words_in(person, other, rng.choice(["icao", "bgn", "informal"]), rng)
    out["other_script"] = written(og, om, os_)
    if not person["en"]:
        ig, im, is_ = words_in(person, "latin", "informal", rng)
        out["other_romanisation"] = written(ig, im, is_)
    out["reordered"] = written(given, middle, surname, order="surname-first")
    if middle:
        out["without_patronymic"] = written(given, "", surname)
    else:
        extra = (rng.choice(EN_FIRST)[0] if person["en"] else
                 patronymic(rng.choice(RU_MALE), False) if script == "cyrillic" else "Alekseevich")
        out["with_patronymic"] = written(given, extra, surname)
    out["initials"] = f"{given[0]}. " + (f"{middle[0]}. " if middle and rng.random() < 0.5 else "") + surname
    words = [given, middle, surname]
    pick = rng.choice([0, 2] + ([1] if middle else []))
    words[pick] = typo(words[pick], rng)
    out["one_typo"] = written(*words)
    name = written(given, middle, surname)
    chars = list(name)
    spots = [i for i, c in enumerate(chars) if c in CONFUSABLE]
    for i in rng.sample(spots, min(2, len(spots))):
        chars[i] = CONFUSABLE[chars[i]]
    out["look_alike"] = "".join(chars)
    return out


def clean_names(rng, people, count):
    """Names of people not on the list: no listed person has the same given name and surname (in canonical form)."""
    from payments.sanctions.matching import parse

    def pair(words):
        p = parse(written(words[0], "", words[2]))
        return p.keys

    taken = set()
    for _entry, person, _dob, _nat in people:
        taken.add(pair(words_in(person, "latin", "icao", rng)))
    out = []
    while len(out) < count:
        kind = rng.choices(["ru", "kg", "en"], weights=[45, 35, 20])[0]
        person = make_person(rng, kind)
        if pair(words_in(person, "latin", "icao", rng)) in taken:
            continue
        script = "cyrillic" if (rng.random() < 0.5 and not person["en"]) else "latin"
        given, middle, surname = words_in(person, script, rng.choice(["icao", "bgn", "informal"]), rng)
        out.append(written(given, middle if rng.random() < 0.5 else "", surname))
    return out


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--names", type=int, default=40_000)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--clean", type=int, default=10_000)
    parser.add_argument("--threshold", type=float, default=None, help="hold threshold (settings default)")
    parser.add_argument("--baseline-sample", type=int, default=200)
    parser.add_argument("--show-misses", type=int, default=0)
    args = parser.parse_args(argv)
    from django.conf import settings
    threshold = args.threshold if args.threshold is not None else settings.SANCTIONS_HOLD_THRESHOLD

    rng = random.Random(args.seed)
    listed, people = generate_list(rng, args.names)
    people = [p for p in people if p[0] <= listed[-1].entry_id]  # the list is cut at --names
    start = time.perf_counter()
    index = NameIndex.build(listed)
    build_seconds = time.perf_counter() - start
    gc.collect()  # the build's garbage, once, as a server does after building the index before taking transfers

    # English people at half weight: the corridor's names are mostly Russian, Kyrgyz and Central Asian.
    chosen = rng.sample([p for p in people if not p[1]["en"] or rng.random() < 0.5], args.people)
    queries = []  # (class, name, entry)
    for entry, person, _dob, _nat in chosen:
        for cls, name in variants(person, rng).items():
            queries.append((cls, name, entry))
    clean = clean_names(rng, people, args.clean)

    def held(name):
        try:
            hits = index.search(name, limit=5)
        except ScreeningInputError:
            return None
        return [h for h in hits if h.score >= threshold]

    per_class, misses = {}, []
    for cls, name, entry in queries:
        hits = held(name)
        caught = hits is None or any(h.listed.entry_id == entry for h in hits)
        per_class.setdefault(cls, []).append(caught)
        if not caught:
            misses.append((cls, name, entry))
    recall = sum(sum(v) for v in per_class.values()) / len(queries)
    false_positives = [(name, hits) for name in clean if (hits := held(name)) is None or hits]

    names = [q[1] for q in queries] + clean
    rng.shuffle(names)
    transfer_ms = []
    for i in range(0, len(names) - 1, 2):
        t0 = time.perf_counter()
        for name in names[i:i + 2]:
            try:
                index.search(name, limit=5)
            except ScreeningInputError:
                pass
        transfer_ms.append((time.perf_counter() - t0) * 1000)

    # Baseline: a naive scan of every listed name with rapidfuzz (WRatio, default processor) per query.
    choices = [n.name for n in listed]
    sample = rng.sample(queries, min(args.baseline_sample // 2, len(queries))) + [
        ("clean", n, None) for n in rng.sample(clean, min(args.baseline_sample // 2, len(clean)))]
    naive_ms, ours_ms, naive_caught, naive_fp = [], [], 0, 0
    for _cls, name, entry in sample:
        t0 = time.perf_counter()
        best = process.extractOne(name, choices, scorer=fuzz.WRatio, processor=utils.default_process,
                                  score_cutoff=threshold * 100)
        naive_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        try:
            index.search(name, limit=5)
        except ScreeningInputError:
            pass
        ours_ms.append((time.perf_counter() - t0) * 1000)
        if entry is None:
            naive_fp += best is not None
        elif best is not None and listed[best[2]].entry_id == entry:
            naive_caught += 1
    variant_sample = sum(1 for s in sample if s[2] is not None)

    print(f"screening.listed_names: {len(listed)}")
    print(f"screening.indexed_names: {len(index)}")
    print(f"screening.build_seconds: {build_seconds:.2f}")
    print(f"screening.threshold: {threshold}")
    print(f"screening.recall_variants: {recall:.4f}")
    for cls, caught in sorted(per_class.items()):
        print(f"screening.recall_{cls}: {sum(caught) / len(caught):.4f}")
    print(f"screening.false_positive_rate: {len(false_positives) / len(clean):.4f}")
    print(f"screening.p50_ms_per_transfer: {statistics.median(transfer_ms):.2f}")
    print(f"screening.p99_ms_per_transfer: {percentile(transfer_ms, 0.99):.2f}")
    print(f"screening.baseline_naive_ms_per_name_p50: {statistics.median(naive_ms):.2f}")
    print(f"screening.ours_ms_per_name_p50_same_sample: {statistics.median(ours_ms):.2f}")
    print(f"screening.speedup_vs_naive_scan: {statistics.median(naive_ms) / statistics.median(ours_ms):.1f}")
    print(f"screening.baseline_naive_recall_on_sample: {naive_caught / max(variant_sample, 1):.4f}")
    print(f"screening.baseline_naive_false_positive_rate_on_sample: "
          f"{naive_fp / max(len(sample) - variant_sample, 1):.4f}")
    print(f"# {len(queries)} variant queries of {args.people} listed people; {len(clean)} clean names; "
          f"{len(index.skipped)} listed names not indexable")
    for cls, name, entry in misses[:args.show_misses]:
        print(f"# miss {cls}: {name!r} (entry {entry}: {[n.name for n in listed if n.entry_id == entry]})")
    for name, hits in false_positives[:args.show_misses]:
        print(f"# false positive: {name!r} -> {[(h.listed.name, h.score, h.rule) for h in hits or []]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
