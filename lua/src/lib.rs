//! `require('jail')`: the jail(3lua) module, a Lua binding over the jail layer of
//! jaildaemon (`jaildaemon::jail::lua`). Nothing is implemented here but the
//! conversion of Lua values: jail ids and names, parameter names and their string
//! values, flags, and the return conventions of the FreeBSD module:
//!
//! * a jail error is returned, never raised: `nil, message` (the jail layer's message);
//! * an argument of the wrong type raises a Lua error, as `luaL_check*` does.
//!
//! See `man/jail.3lua` for the Lua-side description.

use std::collections::BTreeMap;

use jaildaemon::jail::{lua as jl, Flags, JailError};
use mlua::{IntoLuaMulti, Lua, MultiValue, Result, Table, Value};

/// The module table: the functions and the flags.
#[mlua::lua_module]
fn jail(lua: &Lua) -> Result<Table> {
    let m = lua.create_table()?;
    m.set("CREATE", Flags::CREATE.0)?;
    m.set("UPDATE", Flags::UPDATE.0)?;
    m.set("ATTACH", Flags::ATTACH.0)?;
    m.set("DYING", Flags::DYING.0)?;
    m.set("getid", lua.create_function(getid)?)?;
    m.set("getname", lua.create_function(getname)?)?;
    m.set("allparams", lua.create_function(allparams)?)?;
    m.set("getparams", lua.create_function(getparams)?)?;
    m.set("setparams", lua.create_function(setparams)?)?;
    m.set("list", lua.create_function(list)?)?;
    m.set("attach", lua.create_function(attach)?)?;
    m.set("remove", lua.create_function(remove)?)?;
    Ok(m)
}

/// `jail.getid(name)`: the jid, or `nil, message`.
fn getid(lua: &Lua, name: Value) -> Result<MultiValue> {
    let name = string_arg("getid", 1, "string", &name)?;
    returns(lua, jl::getid(&name))
}

/// `jail.getname(jid)`: the name, or `nil, message`.
fn getname(lua: &Lua, jid: Value) -> Result<MultiValue> {
    let jid = integer_arg("getname", 1, &jid)?;
    let jid = i32::try_from(jid)
        .map_err(|_| arg_error("getname", 1, &format!("jid {jid} is out of range")))?;
    returns(lua, jl::getname(jid))
}

/// `jail.allparams()`: every parameter name, as a list.
fn allparams(lua: &Lua, _: MultiValue) -> Result<MultiValue> {
    lua.create_sequence_from(jl::allparams())?
        .into_lua_multi(lua)
}

/// `jail.getparams(jid|name, {names}, [flags])`: `jid, {name=value}`, or `nil, message`.
fn getparams(lua: &Lua, (key, names, flags): (Value, Value, Value)) -> Result<MultiValue> {
    let key = jail_arg("getparams", 1, &key)?;
    let names = names_arg("getparams", 2, &names, false)?;
    let flags = flags_arg("getparams", 3, &flags)?;
    only_dying("getparams", 3, flags)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match jl::getparams(&key, &names, flags) {
        Ok((jid, values)) => (jid, lua.create_table_from(values)?).into_lua_multi(lua),
        Err(e) => failure(lua, e),
    }
}

/// `jail.setparams(jid|name, {name=value}, [flags])`: the jid, or `nil, message`.
fn setparams(lua: &Lua, (key, values, flags): (Value, Value, Value)) -> Result<MultiValue> {
    let key = jail_arg("setparams", 1, &key)?;
    let Value::Table(t) = &values else {
        return Err(type_error("setparams", 2, "table", &values));
    };
    let mut map = BTreeMap::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let k = match &k {
            Value::String(s) => s.to_str()?.to_string(),
            other => {
                return Err(arg_error(
                    "setparams",
                    2,
                    &format!("parameter names are strings, got {}", other.type_name()),
                ))
            }
        };
        let v = match &v {
            Value::String(s) => s.to_str()?.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(arg_error(
                    "setparams",
                    2,
                    &format!("value of {k} must be a string, got {}", other.type_name()),
                ))
            }
        };
        map.insert(k, v);
    }
    let flags = flags_arg("setparams", 3, &flags)?;
    returns(lua, jl::setparams(&key, &map, flags))
}

/// `jail.list([{names}], [flags])`: an iterator over the jails, each step giving
/// `jid, {name=value}`; or `nil, message`.
fn list(lua: &Lua, (names, flags): (Value, Value)) -> Result<MultiValue> {
    let names = names_arg("list", 1, &names, true)?;
    let flags = flags_arg("list", 2, &flags)?;
    only_dying("list", 2, flags)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let jails = match jl::list(&names, flags) {
        Ok(j) => j,
        Err(e) => return failure(lua, e),
    };
    let mut jails = jails.into_iter();
    lua.create_function_mut(move |lua, _: MultiValue| match jails.next() {
        Some((jid, values)) => (jid, lua.create_table_from(values)?).into_lua_multi(lua),
        None => Value::Nil.into_lua_multi(lua),
    })?
    .into_lua_multi(lua)
}

/// `jail.attach(jid|name)`: `true`, or `nil, message`.
fn attach(lua: &Lua, key: Value) -> Result<MultiValue> {
    let key = jail_arg("attach", 1, &key)?;
    returns(lua, jl::attach(&key).map(|()| true))
}

/// `jail.remove(jid|name)`: `true`, or `nil, message`.
fn remove(lua: &Lua, key: Value) -> Result<MultiValue> {
    let key = jail_arg("remove", 1, &key)?;
    returns(lua, jl::remove(&key).map(|()| true))
}

/// The value on success, `nil, message` on a jail error.
fn returns<T: IntoLuaMulti>(lua: &Lua, r: std::result::Result<T, JailError>) -> Result<MultiValue> {
    match r {
        Ok(v) => v.into_lua_multi(lua),
        Err(e) => failure(lua, e),
    }
}

fn failure(lua: &Lua, e: JailError) -> Result<MultiValue> {
    (Value::Nil, e.to_string()).into_lua_multi(lua)
}

/// The message `luaL_argerror` gives.
fn arg_error(func: &str, n: usize, what: &str) -> mlua::Error {
    mlua::Error::runtime(format!("bad argument #{n} to '{func}' ({what})"))
}

fn type_error(func: &str, n: usize, expected: &str, got: &Value) -> mlua::Error {
    arg_error(
        func,
        n,
        &format!("{expected} expected, got {}", type_name(got)),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "no value",
        other => other.type_name(),
    }
}

/// A string argument; a number stands for its decimal form (as `luaL_checkstring`).
fn string_arg(func: &str, n: usize, expected: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => Ok((*x as i64).to_string()),
        other => Err(type_error(func, n, expected, other)),
    }
}

/// An integer argument; a string holding one is accepted (as `luaL_checkinteger`).
fn integer_arg(func: &str, n: usize, v: &Value) -> Result<i64> {
    match v {
        Value::Integer(i) => Ok(*i),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => Ok(*x as i64),
        Value::String(s) => s
            .to_str()?
            .trim()
            .parse::<i64>()
            .map_err(|_| type_error(func, n, "number", v)),
        other => Err(type_error(func, n, "number", other)),
    }
}

/// A jail: an integer jid, or a string holding a jid or a name.
fn jail_arg(func: &str, n: usize, v: &Value) -> Result<String> {
    string_arg(func, n, "jid or name", v)
}

/// A list of parameter names; `nil` (an empty list) only where `optional`.
fn names_arg(func: &str, n: usize, v: &Value, optional: bool) -> Result<Vec<String>> {
    let t = match v {
        Value::Table(t) => t,
        Value::Nil if optional => return Ok(Vec::new()),
        other => return Err(type_error(func, n, "table", other)),
    };
    t.sequence_values::<Value>()
        .map(|v| match v? {
            Value::String(s) => Ok(s.to_str()?.to_string()),
            other => Err(arg_error(
                func,
                n,
                &format!("parameter names are strings, got {}", other.type_name()),
            )),
        })
        .collect()
}

/// Flags: an integer, `nil` for none.
fn flags_arg(func: &str, n: usize, v: &Value) -> Result<Flags> {
    match v {
        Value::Nil => Ok(Flags::NONE),
        other => {
            let i = integer_arg(func, n, other)?;
            u32::try_from(i)
                .map(Flags)
                .map_err(|_| arg_error(func, n, &format!("flags {i} are out of range")))
        }
    }
}

/// Reads accept DYING and nothing else (`luaL_argcheck` in the C module).
fn only_dying(func: &str, n: usize, flags: Flags) -> Result<()> {
    if flags.0 & !Flags::DYING.0 != 0 {
        return Err(arg_error(func, n, "only the DYING flag is valid"));
    }
    Ok(())
}
